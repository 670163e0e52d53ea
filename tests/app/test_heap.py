"""release_free_memory and tune_allocator: safe to call anywhere, effective on glibc."""

from __future__ import annotations

import platform

from syncd.app.service.heap import release_free_memory, tune_allocator


def test_release_free_memory_trims_on_glibc_and_never_raises() -> None:
    garbage = [bytes(4096) for _ in range(10_000)]
    del garbage

    released = release_free_memory()

    assert released is (platform.libc_ver()[0] == "glibc")
    assert release_free_memory() is released  # repeatable


def test_tune_allocator_sets_glibc_limits_unless_the_environment_does() -> None:
    on_glibc = platform.libc_ver()[0] == "glibc"

    applied = tune_allocator(environ={})
    kept = tune_allocator(environ={"MALLOC_ARENA_MAX": "4"})

    if not on_glibc:
        assert applied == kept == {}
        return
    assert applied == {"MALLOC_ARENA_MAX": 2, "MALLOC_MMAP_THRESHOLD_": 128 * 1024}
    assert kept == {"MALLOC_MMAP_THRESHOLD_": 128 * 1024}  # the operator's arena count stands
