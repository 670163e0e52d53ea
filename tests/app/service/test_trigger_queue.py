"""The trigger queue alone: leading edge, coalescing, one drain at a time, nothing lost (a recording
scheduler runs the drain job when the test says; no real time)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from syncd.app.service.running import Lifetime
from syncd.app.service.schedule import Schedule
from syncd.app.service.triggers import TriggerQueue, answer_trigger, merged_trigger
from syncd.engine.report import CycleReport, Trigger
from tests.app.test_service import RecordingScheduler, report_for


class Harness:
    def __init__(self) -> None:
        self.scheduler = RecordingScheduler()
        self.lifetime = Lifetime()
        self.cycles: list[tuple[Trigger, set[str] | None]] = []
        self.lost = 0
        self.during_cycle: Callable[[], object] | None = None  # what arrives while a cycle runs
        self.report: bool = True
        self.queue = TriggerQueue(Schedule(self.scheduler), self.run, lifetime=self.lifetime, on_lost=self.on_lost)

    def run(self, trigger: Trigger, only: set[str] | None) -> CycleReport | None:
        self.cycles.append((trigger, only))
        if self.during_cycle is not None:
            arrive, self.during_cycle = self.during_cycle, None
            arrive()
        return report_for(trigger, only or ["a"]) if self.report else None

    def on_lost(self) -> None:
        self.lost += 1

    def drain_all(self) -> None:
        for job_id in self.scheduler.manual_jobs():
            self.scheduler.run(job_id)


@pytest.fixture
def harness() -> Harness:
    return Harness()


def test_the_first_request_queues_a_drain_at_once_and_later_ones_merge_into_it(harness: Harness) -> None:
    assert harness.queue.request({"a"}, Trigger.NOTIFICATION) is True
    assert harness.queue.request({"b"}, Trigger.NOTIFICATION) is False
    assert harness.queue.request({"a"}, Trigger.NOTIFICATION) is False
    [job_id] = harness.scheduler.manual_jobs()
    assert harness.scheduler.jobs[job_id].options["misfire_grace_time"] is None  # never dropped as late
    harness.drain_all()
    assert harness.cycles == [(Trigger.NOTIFICATION, {"a", "b"})]


def test_a_request_for_everything_wins_over_single_mappings(harness: Harness) -> None:
    harness.queue.request({"a"}, Trigger.NOTIFICATION)
    harness.queue.request(None, Trigger.INTERVAL)
    harness.drain_all()
    assert harness.cycles == [(Trigger.INTERVAL, None)]


def test_what_arrives_during_a_cycle_is_the_follow_up_of_the_same_drain(harness: Harness) -> None:
    harness.queue.request({"a"}, Trigger.NOTIFICATION)
    harness.during_cycle = lambda: harness.queue.request({"b"}, Trigger.DRIFT)
    harness.drain_all()
    assert harness.cycles == [(Trigger.NOTIFICATION, {"a"}), (Trigger.DRIFT, {"b"})]
    assert harness.scheduler.manual_jobs() == []
    assert harness.queue.request({"c"}, Trigger.MANUAL) is True  # drained: the next one leads again
    assert len(harness.scheduler.manual_jobs()) == 1


def test_a_cycle_that_did_not_run_is_reported_lost(harness: Harness) -> None:
    harness.report = False
    harness.queue.request({"a"}, Trigger.NOTIFICATION)
    harness.drain_all()
    assert harness.lost == 1


def test_a_crashing_cycle_is_logged_by_class_and_reported_lost(harness: Harness) -> None:
    def crash(trigger: Trigger, only: set[str] | None) -> CycleReport | None:
        raise RuntimeError("canary-not-in-logs")

    queue = TriggerQueue(Schedule(harness.scheduler), crash, lifetime=harness.lifetime, on_lost=harness.on_lost)
    queue.request({"a"}, Trigger.MANUAL)
    with capture_logs() as logs:
        harness.drain_all()
    assert [e.get("error_code") for e in logs if e["event"] == "manual cycle crashed"] == ["RuntimeError"]
    assert "canary-not-in-logs" not in repr(logs)
    assert harness.lost == 1


def test_while_stopping_nothing_is_queued_and_a_queued_drain_runs_nothing(harness: Harness) -> None:
    harness.queue.request({"a"}, Trigger.NOTIFICATION)
    harness.lifetime.begin_stopping()
    assert harness.queue.request({"b"}, Trigger.NOTIFICATION) is None
    harness.drain_all()
    assert harness.cycles == [] and harness.lost == 0


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ({Trigger.MANUAL, Trigger.NOTIFICATION, Trigger.INTERVAL}, Trigger.MANUAL),
        ({Trigger.INTERVAL, Trigger.DRIFT}, Trigger.INTERVAL),  # the sweep of a change of sync mode
        ({Trigger.DRIFT}, Trigger.DRIFT),
        ({Trigger.DRIFT, Trigger.NOTIFICATION}, Trigger.NOTIFICATION),
        ({Trigger.NOTIFICATION}, Trigger.NOTIFICATION),
        ({Trigger.SCHEDULED}, Trigger.SCHEDULED),  # the check after a static role's announced rotation
        ({Trigger.SCHEDULED, Trigger.DRIFT}, Trigger.NOTIFICATION),
        ({Trigger.SCHEDULED, Trigger.NOTIFICATION}, Trigger.NOTIFICATION),
    ],
)
def test_the_trigger_of_a_merged_cycle(sources: set[Trigger], expected: Trigger) -> None:
    assert merged_trigger(sources) is expected


def test_the_http_answers_of_a_trigger(harness: Harness) -> None:
    known = {"a", "b"}
    leading = (True, "me")
    assert answer_trigger(harness.queue, "zz", Trigger.MANUAL, known=known, leader=leading) == (
        404,
        {"error": "unknown mapping", "mapping": "zz"},
    )
    assert answer_trigger(harness.queue, "a", Trigger.MANUAL, known=known, leader=(False, "other-pod")) == (
        503,
        {"error": "not the leader", "leader": "other-pod"},
    )
    assert answer_trigger(harness.queue, "a", Trigger.MANUAL, known=known, leader=leading) == (
        202,
        {"queued": True, "mapping": "a", "coalesced": False},
    )
    assert answer_trigger(harness.queue, None, Trigger.MANUAL, known=known, leader=leading)[1]["coalesced"] is True
    harness.lifetime.begin_stopping()
    assert answer_trigger(harness.queue, "a", Trigger.MANUAL, known=known, leader=leading) == (
        503,
        {"error": "shutting down"},
    )
