"""release_free_memory: safe to call anywhere, effective on glibc."""

from __future__ import annotations

import platform

from syncd.app.service.heap import release_free_memory


def test_release_free_memory_trims_on_glibc_and_never_raises() -> None:
    garbage = [bytes(4096) for _ in range(10_000)]
    del garbage

    released = release_free_memory()

    assert released is (platform.libc_ver()[0] == "glibc")
    assert release_free_memory() is released  # repeatable
