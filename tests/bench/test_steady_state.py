"""The steady-state benchmark at a tiny size, so that it cannot rot.

It runs the real thing (devstack subprocess, syncd's clients, the floor clients) on 20 paths and
pins the invariants the benchmark reports on, not its timings: an unchanged cycle costs exactly
one Vault metadata read per path and no Cloudflare call; a rotation costs one Cloudflare call and
one Worker version per affected script. Speed is the benchmark's business, not the test's.
"""

from __future__ import annotations

import json

import pytest

from bench.steady_state import FLOOR_RAW, FLOOR_REQUESTS, SYNCD, SizeResult, as_json, format_result, run_size

PATHS = 20


@pytest.fixture(scope="module")
def result() -> SizeResult:
    return run_size(PATHS, cycles=1, concurrencies=(8,), bindings_per_script=5, rotations=((1, 1), (4, 2), (5, 1)))


def test_the_benchmark_finds_no_broken_invariant(result: SizeResult) -> None:
    assert result.problems == []


def test_the_initial_sync_writes_each_script_once_in_bulk(result: SizeResult) -> None:
    assert result.initial.ok
    assert result.scripts == 4
    assert result.initial.cloudflare_calls.get("PATCH secrets-bulk") == 4
    assert result.initial.vault_requests == {"GET metadata": PATHS, "GET data": PATHS}


def test_an_unchanged_cycle_costs_one_metadata_read_per_path_and_no_cloudflare_call(result: SizeResult) -> None:
    by_client = {m.client: m for m in result.measurements}
    assert set(by_client) == {SYNCD, FLOOR_RAW, FLOOR_REQUESTS}
    for measurement in by_client.values():
        assert (measurement.checks, measurement.vault_requests, measurement.cloudflare_calls) == (PATHS, PATHS, 0)
        assert measurement.cpu_seconds > 0
        assert measurement.wall_seconds > 0


def test_a_rotation_costs_one_cloudflare_call_and_one_worker_version_per_affected_script(result: SizeResult) -> None:
    rows = [
        (r.secrets, r.scripts, r.cloudflare_calls, r.worker_versions_created, r.values_arrived)
        for r in result.rotations
    ]
    assert rows == [
        (1, 1, {"PATCH secrets-bulk": 1}, 1, True),
        (4, 2, {"PATCH secrets-bulk": 2}, 2, True),
        (5, 1, {"PATCH secrets-bulk": 1}, 1, True),
    ]
    # One metadata read per path, plus one data read per rotated secret.
    assert [r.vault_requests for r in result.rotations] == [{"GET metadata": PATHS, "GET data": n} for n in (1, 4, 5)]


def test_the_table_and_the_json_report_the_figures_and_never_a_value(result: SizeResult) -> None:
    table = "\n".join(format_result(result, (8,)))
    document = json.dumps(as_json(result))
    for text in (table, document):
        assert "bench-seed-" not in text
        assert "bench-rotated-" not in text
    assert f"{SYNCD}" in table
    assert "problems: none" in table
    assert json.loads(document)["measurements"][0]["cpu_us_per_check"] > 0
