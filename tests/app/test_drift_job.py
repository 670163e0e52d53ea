"""The service's drift job: scheduled beside the cycles, leader only, never overlapping a cycle, and
fed every finished cycle (fakes; the checks themselves are tested over HTTP elsewhere)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from syncd.app.leadership.sole import Leadership
from syncd.app.service.daemon import DRIFT_JOB, STARTUP_JOB, Service, drift_tick
from syncd.app.service.parts import ServiceParts
from syncd.config import Settings, load_config
from syncd.engine.drift import DriftCorrection
from syncd.engine.report import CycleReport
from tests.app.test_service import (
    FakeClock,
    FakeMetrics,
    FakeReconciler,
    FakeState,
    RecordingScheduler,
    config_with,
)


class FakeDrift:
    def __init__(self) -> None:
        self.runs: list[bool] = []  # whether each check got the cycle lock
        self.noted: list[CycleReport] = []

    def run_due(self, exclusive: Callable[[], AbstractContextManager[bool]] | None = None) -> int:
        assert exclusive is not None
        with exclusive() as alone:
            self.runs.append(alone)
        return 1

    def note_cycle(self, report: CycleReport) -> None:
        self.noted.append(report)

    def corrections(self) -> tuple[DriftCorrection, ...]:
        return ()

    def update_settings(self, settings: Settings) -> None:
        pass


class Follower:
    identity = "syncd-b"
    is_leader = False
    leader_identity = "syncd-a"
    finished = False

    def valid_until(self) -> float:
        return 0.0

    def can_write(self, deadline: float) -> bool:
        return False

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 10.0) -> None:
        pass


def service(
    tmp_path: Path, drift: FakeDrift, leadership: Leadership | None = None
) -> tuple[Service, RecordingScheduler, FakeReconciler]:
    path = tmp_path / "syncd.toml"
    path.write_text(config_with("alpha"))
    reconciler = FakeReconciler(["alpha"])
    scheduler = RecordingScheduler()
    parts = ServiceParts(reconciler, FakeState(), FakeMetrics(), drift=drift, leadership=leadership)
    return Service(load_config(path), path, parts, clock=FakeClock(), scheduler=scheduler), scheduler, reconciler


def test_the_drift_job_is_scheduled_and_sees_every_cycle(tmp_path: Path) -> None:
    drift = FakeDrift()
    svc, scheduler, _ = service(tmp_path, drift)
    svc.start()
    job = scheduler.jobs[DRIFT_JOB]
    assert (job.trigger, job.options["seconds"]) == ("interval", drift_tick(300.0))
    assert job.options["max_instances"] == 1
    scheduler.run(STARTUP_JOB)
    scheduler.run(DRIFT_JOB)
    assert [r.trigger for r in drift.noted] == ["startup"]
    assert drift.runs == [True]


def test_a_check_waits_for_a_running_cycle_and_defers_when_it_keeps_running(tmp_path: Path) -> None:
    drift = FakeDrift()
    svc, scheduler, reconciler = service(tmp_path, drift)
    svc.start()
    reconciler.block = threading.Event()
    cycle = threading.Thread(target=svc.run_cycle, args=("manual",))
    cycle.start()
    try:
        assert reconciler.entered.wait(10)
        scheduler.run(DRIFT_JOB)  # the cycle holds the lock past DRIFT_WAIT_SECONDS
        assert drift.runs == [False]
    finally:
        reconciler.block.set()
        cycle.join(10)
    scheduler.run(DRIFT_JOB)
    assert drift.runs == [False, True]


def test_a_follower_runs_no_drift_check(tmp_path: Path) -> None:
    drift = FakeDrift()
    svc, scheduler, _ = service(tmp_path, drift, leadership=Follower())
    svc.start()
    scheduler.run(DRIFT_JOB)
    assert drift.runs == []


def test_a_reload_with_another_check_interval_reschedules_the_drift_job(tmp_path: Path) -> None:
    drift = FakeDrift()
    svc, scheduler, _ = service(tmp_path, drift)
    svc.start()
    svc.config_path.write_text(config_with("alpha", extra="drift_check_interval_seconds = 60\n"))
    assert svc.reload()
    assert (DRIFT_JOB, "interval", {"seconds": drift_tick(60.0)}) in scheduler.rescheduled
