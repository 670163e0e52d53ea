"""``bench/vault_clients.py`` and ``bench/memory.py`` at a tiny size, so that they cannot rot.

They run the real thing (devstack subprocess, every client, ``syncd run`` in its own process) on
20 paths and pin what the benchmarks check, not their timings: every client's pass makes exactly
one Vault read per path and no Cloudflare call; ``syncd run`` converges and keeps cycling.
"""

from __future__ import annotations

from bench.memory import format_result, measure
from bench.steady_state import SYNCD
from bench.vault_clients import CLIENTS, FLOOR, format_size, run_size

PATHS = 20


def test_every_client_reads_each_path_once_and_the_table_has_a_row_each() -> None:
    measurements, problems = run_size(PATHS, rounds=1, concurrency=4)
    assert problems == []
    assert {m.client for m in measurements} == {*CLIENTS, SYNCD}
    for measurement in measurements:
        assert (measurement.checks, measurement.vault_requests, measurement.cloudflare_calls) == (PATHS, PATHS, 0)
    table = "\n".join(format_size(PATHS, measurements, problems))
    assert FLOOR in table and "syncd cycle" in table and "problems: none" in table


def test_memory_reads_the_rss_of_syncd_run_after_convergence_and_after_each_cycle() -> None:
    result = measure(PATHS, cycles=2, interval=1.0, timeout=50.0, log=None)
    assert result.cycles_failed == 0 and result.cycles_ok >= 3
    assert len(result.rss_samples_mib) == 2
    assert 0 < result.rss_converged_mib <= result.peak_mib
    assert "after 2 more cycles" in "\n".join(format_result(result))
