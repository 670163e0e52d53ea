"""The cycle runner alone: the hard deadline, a hung cycle abandoned and detected, one cycle at a time,
the outcomes told, a wind-down at shutdown (a fake clock for the deadline; a blocked fake
reconciler for the hang, whose wait is the runner's own, a fraction of a second)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.app.service.cycle_runner import CycleRunner
from syncd.app.service.running import Lifetime
from syncd.engine.drift import DriftCorrection
from syncd.engine.report import CycleReport, Trigger
from syncd.errors import VaultPermissionDenied
from syncd.model import Target
from tests.app.service.helpers import RecordingOutcomes, in_force
from tests.app.test_service import WAIT, FakeClock, FakeReconciler


class Harness:
    def __init__(self, tmp_path: Path, *, leading: bool = True, hang_slack: float = 0.05) -> None:
        self.reconciler = FakeReconciler(["alpha", "beta"])
        self.outcomes = RecordingOutcomes()
        self.lifetime = Lifetime()
        self.clock = FakeClock()
        self.prepared: list[str] = []
        self.runner = CycleRunner(
            self.reconciler,
            self.outcomes,
            settings=in_force(tmp_path, "alpha", "beta"),
            lifetime=self.lifetime,
            leading=lambda: leading,
            prepare=lambda: self.prepared.append(threading.current_thread().name),
            clock=self.clock,
            hang_slack_seconds=hang_slack,
        )


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_a_cycle_gets_its_deadline_and_its_outcome_is_told(harness: Harness) -> None:
    harness.clock.now = 2000.0
    report = harness.runner.run(Trigger.BACKSTOP, ["beta", "alpha", "beta"])
    assert report is not None
    assert harness.reconciler.calls == [
        {"trigger": Trigger.BACKSTOP, "only": ["alpha", "beta"], "deadline": pytest.approx(2000.2)}
    ]
    assert harness.outcomes.finished_reports == [(Trigger.BACKSTOP, report)]
    assert harness.prepared == ["syncd-cycle-backstop"]  # in the cycle's own thread, before it


def test_every_cycle_gets_the_drift_corrections_not_yet_confirmed(tmp_path: Path) -> None:
    pending = [DriftCorrection(Target("a" * 32, "edge"), frozenset({"ONE"}), "missing", found_at=1.0)]
    reconciler = FakeReconciler(["alpha"])
    runner = CycleRunner(
        reconciler,
        RecordingOutcomes(),
        settings=in_force(tmp_path, "alpha"),
        lifetime=Lifetime(),
        leading=lambda: True,
        corrections=lambda: tuple(pending),
        clock=FakeClock(),
    )
    runner.run(Trigger.DRIFT, ["alpha"])
    pending.clear()  # confirmed by that cycle
    runner.run(Trigger.INTERVAL)
    assert reconciler.corrections_seen == [
        (DriftCorrection(Target("a" * 32, "edge"), frozenset({"ONE"}), "missing", found_at=1.0),),
        (),
    ]


def test_a_failing_reconcile_is_told_as_a_failure(harness: Harness) -> None:
    error = VaultPermissionDenied("secret/x")

    def refuse(**_: object) -> CycleReport:
        raise error

    harness.reconciler.reconcile = refuse  # type: ignore[method-assign]
    assert harness.runner.run(Trigger.INTERVAL) is None
    assert harness.outcomes.failures == [(Trigger.INTERVAL, error)]


def test_a_follower_and_a_stopping_service_run_no_cycle(tmp_path: Path, harness: Harness) -> None:
    follower = Harness(tmp_path, leading=False)
    assert follower.runner.run(Trigger.INTERVAL) is None
    assert follower.reconciler.calls == []
    harness.lifetime.begin_stopping()
    assert harness.runner.run(Trigger.INTERVAL) is None
    assert harness.reconciler.calls == []


def test_a_hung_cycle_is_abandoned_detected_and_blocks_the_next_until_it_ends(harness: Harness) -> None:
    harness.reconciler.block = threading.Event()
    harness.clock.now = 1500.0
    with capture_logs() as logs:
        assert harness.runner.run(Trigger.NOTIFICATION) is None  # after deadline (0.2) + slack (0.05)
        assert harness.runner.abandoned_since == 1500.0
        assert harness.runner.run(Trigger.INTERVAL) is None  # skipped: the hung one still runs
    assert len(harness.reconciler.calls) == 1
    assert [e["trigger"] for e in logs if e["event"].startswith("cycle passed its hard deadline")] == ["notification"]
    assert any(e["event"].startswith("previous cycle still running") for e in logs)
    harness.reconciler.block.set()
    assert harness.runner.wait_idle(WAIT)
    harness.reconciler.block = None
    assert harness.runner.run(Trigger.INTERVAL) is not None
    assert harness.runner.abandoned_since is None
    assert [t for t, _ in harness.outcomes.finished_reports] == [Trigger.INTERVAL]  # the abandoned one never


def test_between_cycles_is_false_while_a_cycle_runs_and_true_after(tmp_path: Path) -> None:
    harness = Harness(tmp_path, hang_slack=WAIT)  # the cycle is never abandoned while the test looks
    harness.reconciler.block = threading.Event()
    cycle = threading.Thread(target=harness.runner.run, args=(Trigger.MANUAL,))
    cycle.start()
    try:
        assert harness.reconciler.entered.wait(WAIT)
        with harness.runner.between_cycles(0.01) as alone:
            assert alone is False
    finally:
        harness.reconciler.block.set()
        cycle.join(WAIT)
    with harness.runner.between_cycles(0.01) as alone:
        assert alone is True


def test_between_cycles_waits_until_the_ended_cycle_is_accounted_for(tmp_path: Path) -> None:
    """The drift check counts syncd's own writes from the outcome (``note_cycle``): a check between
    a cycle's end and its accounting would judge those writes foreign, then the late count would
    hide the next hand edit (the CI failure of 2026-12-07)."""
    harness = Harness(tmp_path)
    telling = threading.Event()
    release = threading.Event()
    finished = harness.outcomes.finished

    def slow_finished(trigger: Trigger, report: CycleReport) -> None:
        telling.set()
        release.wait(WAIT)
        finished(trigger, report)

    harness.outcomes.finished = slow_finished  # type: ignore[method-assign]
    cycle = threading.Thread(target=harness.runner.run, args=(Trigger.MANUAL,))
    cycle.start()
    try:
        assert telling.wait(WAIT)  # the reconcile is over; its outcome is being told
        with harness.runner.between_cycles(0.01) as alone:
            assert alone is False
    finally:
        release.set()
        cycle.join(WAIT)
    with harness.runner.between_cycles(0.01) as alone:
        assert alone is True
    assert [t for t, _ in harness.outcomes.finished_reports] == [Trigger.MANUAL]


def test_run_job_logs_a_crash_by_class_and_returns_none(harness: Harness) -> None:
    def crash(trigger: Trigger, report: CycleReport) -> None:
        raise RuntimeError("canary-not-in-logs")

    harness.outcomes.finished = crash  # type: ignore[method-assign]
    with capture_logs() as logs:
        assert harness.runner.run_job(Trigger.STARTUP) is None
    [event] = [e for e in logs if e["event"] == "cycle job crashed"]
    assert (event["trigger"], event["error_code"]) == ("startup", "RuntimeError")
    assert "canary-not-in-logs" not in repr(logs)


def test_wind_down_waits_for_the_cycle_in_flight_within_the_grace(tmp_path: Path) -> None:
    harness = Harness(tmp_path, hang_slack=WAIT)
    harness.reconciler.block = threading.Event()
    cycle = threading.Thread(target=harness.runner.run, args=(Trigger.INTERVAL,), daemon=True)
    cycle.start()
    assert harness.reconciler.entered.wait(WAIT)
    with capture_logs() as logs:
        harness.runner.wind_down(0.01)  # the cycle keeps running: given up after the grace
    assert any("did not finish within the shutdown grace" in e["event"] for e in logs)
    harness.reconciler.block.set()
    harness.runner.wind_down(WAIT)  # now it ends within the grace, its outcome told
    cycle.join(WAIT)
    assert [t for t, _ in harness.outcomes.finished_reports] == [Trigger.INTERVAL]
