"""Hand the heap memory a cycle or a scrape freed back to the OS (glibc ``malloc_trim``).

A cycle over 10,000 mappings and a /metrics scrape of their series allocate tens of MiB of
short-lived objects (state rows, results, exposition lines) and free them when they finish. glibc
keeps freed memory in the arena of the thread that allocated it (the cycle's workers, the HTTP
server's threads) instead of returning it, so resident memory settles at the high-water mark of
the busiest cycle and scrape. ``malloc_trim(0)`` returns free pages of every arena to the OS
(man 3 malloc_trim; since glibc 2.8 also the free pages inside the heap, not only at its top).
Where the C library has no ``malloc_trim`` (musl, macOS) :func:`release_free_memory` does nothing.

:func:`tune_allocator` (called once by ``syncd run`` before any thread starts) caps glibc at two
arenas instead of eight per core, since each thread arena keeps its own free memory, and fixes the
threshold above which a block gets its own mapping at 128 KiB (glibc otherwise raises it after the
first large free, up to 32 MiB, so multi-MiB buffers of an exposition land in the heap and
fragment it). Both are what ``MALLOC_ARENA_MAX=2`` / ``MALLOC_MMAP_THRESHOLD_=131072`` do (man 3
mallopt); an operator who sets either variable keeps that value. Measured by ``bench/memory.py``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["release_free_memory", "tune_allocator"]

# mallopt(3) parameters (glibc malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ALLOCATOR_SETTINGS = (
    ("MALLOC_ARENA_MAX", M_ARENA_MAX, 2),
    ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, 128 * 1024),
)


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _libc_function(name: str) -> Callable[..., int] | None:
    function: Callable[..., int] | None = getattr(_libc(), name, None)
    return function


def _malloc_trim() -> Callable[[int], int] | None:
    return _libc_function("malloc_trim")


def tune_allocator(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Set glibc's arena count and mmap threshold for a long-lived threaded daemon, unless the
    environment already does; returns what was set (empty where the C library has no mallopt)."""
    mallopt = _libc_function("mallopt")
    if mallopt is None or _malloc_trim() is None:  # not glibc
        return {}
    applied = {}
    for variable, parameter, value in ALLOCATOR_SETTINGS:
        if variable not in environ and mallopt(parameter, value) == 1:
            applied[variable] = value
    return applied


def release_free_memory() -> bool:
    """Return freed heap pages to the OS; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
