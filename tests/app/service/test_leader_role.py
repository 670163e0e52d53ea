"""The leader role: who leads, the takeover cycle over freshly read state (counted as a ``takeover``
cycle), stepping down by leaving the process, and the leadership in ``/status``."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from syncd.app.leadership.sole import SoleWriter
from syncd.app.service.daemon import TAKEOVER_JOB, Service, ServiceParts
from syncd.app.service.leader_role import EXIT_LEADERSHIP_LOST, LeaderRole
from syncd.app.service.metrics import Metrics
from syncd.app.service.schedule import Schedule
from syncd.config import load_config
from syncd.engine.report import CycleReport, Trigger
from syncd.errors import StateError
from tests.app.test_drift_job import Follower
from tests.app.test_service import FakeClock, FakeReconciler, FakeState, RecordingScheduler, config_with, report_for


class Leader(Follower):
    identity = "syncd-a"
    is_leader = True


class UnreadableState(FakeState):
    def reload(self) -> None:
        raise StateError("the state Secret syncd-state-0 cannot be read")


class Harness:
    def __init__(self, elector: Follower | SoleWriter | None, state: FakeState | None = None) -> None:
        self.scheduler = RecordingScheduler()
        self.state = state or FakeState()
        self.cycles: list[Trigger] = []
        self.exits: list[int] = []
        self.role = LeaderRole(
            elector,
            state=self.state,
            schedule=Schedule(self.scheduler),
            run_cycle=self.run,
            request_exit=self.exits.append,
        )

    def run(self, trigger: Trigger) -> CycleReport | None:
        self.cycles.append(trigger)
        return report_for(trigger, ["alpha"])


def test_taking_the_lease_reads_the_state_then_runs_a_takeover_cycle_off_the_elector_thread() -> None:
    harness = Harness(Leader())
    harness.role.on_started_leading()
    assert harness.cycles == []  # only queued: the elector's renewal loop goes on at once
    harness.scheduler.run(TAKEOVER_JOB)
    assert harness.state.reloads == 1 and harness.cycles == [Trigger.TAKEOVER]


def test_a_takeover_over_unreadable_state_runs_no_cycle() -> None:
    harness = Harness(Leader(), UnreadableState())
    with capture_logs() as logs:
        harness.role.take_over()
    assert harness.cycles == []
    assert any(e["event"] == "takeover: cannot read the state" for e in logs)


def test_losing_the_lease_asks_the_process_to_exit_with_code_1() -> None:
    harness = Harness(Leader())
    harness.role.on_stopped_leading()
    assert harness.exits == [EXIT_LEADERSHIP_LOST] == [1]


def test_who_leads_as_status_shows_it() -> None:
    assert Harness(None).role.status() == {"enabled": False, "role": "leader"}
    assert Harness(None).role.leading()
    follower = Harness(Follower()).role
    assert not follower.leading()
    assert follower.status() == {"enabled": True, "identity": "syncd-b", "role": "follower", "leader": "syncd-a"}
    assert Harness(SoleWriter("pod-0")).role.status()["enabled"] is False  # no [leader_election]


def test_a_takeover_cycle_is_counted_under_its_own_trigger(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text(config_with("alpha"))
    metrics, scheduler = Metrics(), RecordingScheduler()
    parts = ServiceParts(FakeReconciler(["alpha"]), FakeState(), metrics, leadership=Leader())
    service = Service(load_config(path), path, parts, clock=FakeClock(), scheduler=scheduler)
    service.start()
    service.on_started_leading()
    scheduler.run(TAKEOVER_JOB)
    assert metrics.registry.get_sample_value("syncd_cycles_total", {"trigger": "takeover", "outcome": "ok"}) == 1
    assert metrics.registry.get_sample_value("syncd_cycles_total", {"trigger": "other", "outcome": "ok"}) is None
    assert service.status()["last_cycle"]["trigger"] == "takeover"
