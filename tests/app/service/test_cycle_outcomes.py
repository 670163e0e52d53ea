"""What a finished or failed cycle leaves behind, in order, and what the log says about it."""

from __future__ import annotations

from structlog.testing import capture_logs

from syncd.app.service.cycle_outcomes import CycleBookkeeping, CycleHistory
from syncd.engine.report import CycleReport, Trigger
from syncd.errors import VaultPermissionDenied
from tests.app.test_drift_job import FakeDrift
from tests.app.test_service import FakeClock, FakeMetrics, report_for


class Harness:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.history = CycleHistory()
        self.metrics = FakeMetrics()
        self.drift = FakeDrift()
        self.clock = FakeClock()
        self.bookkeeping = CycleBookkeeping(
            self.history,
            self.metrics,
            note_results=self.note_results,
            update_gauges=lambda: self.events.append("gauges"),
            drift=self.drift,
            clock=self.clock,
        )

    def note_results(self, report: CycleReport) -> None:
        self.events.append(f"results:{len(report.results)}")


def test_a_finished_cycle_is_recorded_counted_noted_and_logged() -> None:
    harness = Harness()
    harness.clock.now = 1234.0
    report = report_for(Trigger.NOTIFICATION, ["a", "b"], failed={"b"})
    with capture_logs() as logs:
        harness.bookkeeping.finished(Trigger.NOTIFICATION, report)
    snapshot = harness.history.snapshot()
    assert (snapshot.last_report, snapshot.last_cycle_end, snapshot.startup_done) == (report, 1234.0, False)
    assert harness.metrics.cycles == [report] and harness.drift.noted == [report]
    assert harness.events == ["results:2", "gauges"]
    [line] = [e for e in logs if e["event"] == "cycle finished"]
    assert (line["trigger"], line["mappings"], line["failed"]) == ("notification", 2, 1)


def test_the_startup_cycle_marks_startup_done_whatever_its_outcome() -> None:
    finished, failed = Harness(), Harness()
    finished.bookkeeping.finished(Trigger.STARTUP, report_for(Trigger.STARTUP, ["a"]))
    failed.bookkeeping.failed(Trigger.STARTUP, VaultPermissionDenied("secret/a"))
    assert finished.history.snapshot().startup_done and failed.history.snapshot().startup_done
    other = Harness()
    other.bookkeeping.failed(Trigger.INTERVAL, VaultPermissionDenied("secret/a"))
    assert not other.history.snapshot().startup_done


def test_a_failure_keeps_the_last_report_and_logs_only_vetted_text() -> None:
    harness = Harness()
    report = report_for(Trigger.INTERVAL, ["a"])
    harness.bookkeeping.finished(Trigger.INTERVAL, report)
    with capture_logs() as logs:
        harness.bookkeeping.failed(Trigger.MANUAL, VaultPermissionDenied("secret/a"))
        harness.bookkeeping.failed(Trigger.MANUAL, RuntimeError("canary-not-in-logs"))
    assert harness.history.snapshot().last_report is report
    assert harness.metrics.cycles == [report]  # a failed cycle has no report to count
    errors = [(e["error_code"], e["error"]) for e in logs if e["event"] == "cycle failed"]
    assert errors[0][0] == "VaultPermissionDenied" and "secret/a" in errors[0][1]
    assert errors[1] == ("RuntimeError", "RuntimeError")
    assert harness.events[-2:] == ["gauges", "gauges"]
