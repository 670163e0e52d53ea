"""The propagation benchmark at a tiny size, so that it cannot rot: the real ``syncd run`` in a
subprocess against the devstack, with the audit device and with 1 s polling. It pins that every
rotation arrives and is measured in each mode; it asserts no timing."""

from __future__ import annotations

import pytest

from bench._stack import Admin, DevstackProcess
from bench.propagation import format_table, run_mode, seed, summarize
from tests.devstack.workers.conftest import require_workerd

SECRETS = 5
ROTATIONS = 2


def test_every_rotation_arrives_and_is_measured_in_each_mode() -> None:
    with DevstackProcess() as devstack:
        assert devstack.endpoints is not None
        admin = Admin(devstack.endpoints)
        seed(admin, SECRETS)
        series = [run_mode(devstack.endpoints, admin, key, SECRETS, ROTATIONS) for key in ("audit", "poll-1s")]
    for each in series:
        assert each.lost == 0, each.mode
        assert len(each.latencies) == ROTATIONS, each.mode
        assert each.cpu_seconds >= 0
    rows = summarize([series])
    table = format_table(rows, 1, SECRETS)
    assert "audit device, defaults (leading edge)" in table and "polling every 1 s" in table
    assert "bench-" not in table  # values are never printed


@pytest.mark.integration
def test_with_workerd_every_rotation_is_also_measured_at_the_workers_own_answer() -> None:
    require_workerd()
    with DevstackProcess(workers=True) as devstack:
        assert devstack.endpoints is not None and devstack.endpoints.workers_url
        admin = Admin(devstack.endpoints)
        seed(admin, SECRETS)
        series = run_mode(devstack.endpoints, admin, "audit", SECRETS, ROTATIONS)
    assert series.lost == 0
    assert len(series.worker_latencies) == len(series.latencies) == ROTATIONS
    # the Worker answers after the emulator recorded the write (the runtime reloads in between)
    assert all(w >= r for w, r in zip(series.worker_latencies, series.latencies, strict=True))
    table = format_table(summarize([[series]]), 1, SECRETS)
    assert "p50 write -> Worker answers (workerd)" in table
