"""Hand the heap memory a cycle or a scrape freed back to the OS (glibc ``malloc_trim``).

A cycle over 10,000 mappings and a /metrics scrape of their series allocate tens of MiB of
short-lived objects (state rows, results, exposition lines) and free them when they finish. glibc
keeps freed memory in the arena of the thread that allocated it (the cycle's workers, the HTTP
server's threads) instead of returning it, so resident memory settles at the high-water mark of
the busiest cycle and scrape. ``malloc_trim(0)`` returns free pages of every arena to the OS
(man 3 malloc_trim; since glibc 2.8 also the free pages inside the heap, not only at its top).
Where the C library has no ``malloc_trim`` (musl, macOS) :func:`release_free_memory` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_free_memory() -> bool:
    """Return freed heap pages to the OS; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
