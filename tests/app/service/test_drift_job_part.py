"""The drift job as a part: leader only, not while stopping, never beside a cycle, a crash logged."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from structlog.testing import capture_logs

from syncd.app.service.drift_job import DRIFT_WAIT_SECONDS, DriftJob
from syncd.app.service.running import Lifetime
from tests.app.test_drift_job import FakeDrift


class Gate:
    """``between_cycles`` of a runner: records how long a check was ready to wait."""

    def __init__(self, free: bool) -> None:
        self.free = free
        self.waits: list[float] = []

    @contextlib.contextmanager
    def between_cycles(self, wait_seconds: float) -> Iterator[bool]:
        self.waits.append(wait_seconds)
        yield self.free


def job(drift: FakeDrift, gate: Gate, *, leading: bool = True, lifetime: Lifetime | None = None) -> DriftJob:
    return DriftJob(drift, between_cycles=gate.between_cycles, leading=lambda: leading, lifetime=lifetime or Lifetime())


def test_the_checks_run_between_cycles_waiting_a_little_for_one() -> None:
    drift, gate = FakeDrift(), Gate(free=True)
    job(drift, gate).run()
    assert drift.runs == [True] and gate.waits == [DRIFT_WAIT_SECONDS]
    busy_drift, busy = FakeDrift(), Gate(free=False)
    job(busy_drift, busy).run()
    assert busy_drift.runs == [False]  # the checker defers its checks


def test_a_follower_or_a_stopping_service_checks_nothing() -> None:
    drift = FakeDrift()
    job(drift, Gate(free=True), leading=False).run()
    stopping = Lifetime()
    stopping.begin_stopping()
    job(drift, Gate(free=True), lifetime=stopping).run()
    assert drift.runs == []


def test_a_crash_in_a_check_is_logged_by_class_and_the_job_goes_on() -> None:
    class Crashing(FakeDrift):
        def run_due(self, exclusive: Callable[[], AbstractContextManager[bool]] | None = None) -> int:
            raise ValueError("canary-not-in-logs")

    with capture_logs() as logs:
        job(Crashing(), Gate(free=True)).run()
    assert [e["error_code"] for e in logs if e["event"] == "drift job crashed"] == ["ValueError"]
    assert "canary-not-in-logs" not in repr(logs)
