"""Start and stop order, and leaving ``run_forever`` with the code leadership asked for."""

from __future__ import annotations

from pathlib import Path

from syncd.app.service.daemon import RECONCILE_JOB, STARTUP_JOB, TOKEN_JOB, Service, ServiceParts
from syncd.config import load_config
from syncd.engine.report import Trigger
from tests.app.service.test_leader_role import Leader
from tests.app.test_service import FakeMetrics, FakeReconciler, FakeState, FakeTokens, RecordingScheduler, config_with


class Recorder:
    """The server and the elector, recording when they start and stop."""

    def __init__(self, events: list[str], name: str) -> None:
        self.events, self.name = events, name

    def start(self) -> None:
        self.events.append(f"{self.name}-started")

    def stop(self, timeout: float = 10.0) -> None:
        self.events.append(f"{self.name}-stopped")


class RecordingLeader(Leader):
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def start(self) -> None:
        self.events.append("elector-started")

    def stop(self, timeout: float = 10.0) -> None:
        self.events.append("elector-stopped")


def build(tmp_path: Path, events: list[str], scheduler: RecordingScheduler) -> Service:
    path = tmp_path / "syncd.toml"
    path.write_text(config_with("alpha"))
    state = FakeState(events=events)
    parts = ServiceParts(
        FakeReconciler(["alpha"]), state, FakeMetrics(), token_manager=FakeTokens(), leadership=RecordingLeader(events)
    )
    return Service(
        load_config(path), path, parts, scheduler=scheduler, server_factory=lambda _: Recorder(events, "server")
    )


def test_the_server_starts_first_and_stops_last_the_lease_goes_after_the_state_is_closed(tmp_path: Path) -> None:
    events: list[str] = []
    scheduler = RecordingScheduler(on_start=lambda: events.append("scheduler-started"))
    service = build(tmp_path, events, scheduler)
    service.start()
    assert events == ["server-started", "scheduler-started", "elector-started"]
    assert set(scheduler.jobs) == {TOKEN_JOB, STARTUP_JOB, RECONCILE_JOB}
    assert scheduler.jobs[STARTUP_JOB].args == [Trigger.STARTUP]
    service.shutdown()
    service.shutdown()  # a second call does nothing
    assert events[3:] == ["state-closed", "elector-stopped", "server-stopped"]
    assert scheduler.shut_down and service.healthz()[1]["problems"][-1] == "stopped"


def test_losing_the_lease_ends_run_forever_with_code_1(tmp_path: Path) -> None:
    events: list[str] = []
    service: list[Service] = []

    def lose_the_lease() -> None:  # as the elector would, once the service runs
        service[0].on_stopped_leading()

    service.append(build(tmp_path, events, RecordingScheduler(on_start=lose_the_lease)))
    assert service[0].run_forever() == 1
    assert "state-closed" in events
