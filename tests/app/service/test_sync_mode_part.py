"""Sync mode as a part: the mode from the sources' connections, one sweep per change, what each
interval tick reconciles, retries of failed mappings, a lost cycle made up by a full sweep
(a fake clock; the sources are plain calls)."""

from __future__ import annotations

from pathlib import Path

from syncd.app.service.metrics import Metrics
from syncd.app.service.running import Lifetime
from syncd.app.service.sweep import BACKSTOP, INTERVAL
from syncd.app.service.sync_mode import SyncMode
from syncd.engine.report import CycleReport, Trigger
from tests.app.service.helpers import in_force
from tests.app.test_service import FakeClock, report_for

NAMES = [f"m{i}" for i in range(6)]


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        # 60 s backstop over 30 s ticks: two slices of three secrets each.
        self.settings = in_force(tmp_path, *NAMES, extra="backstop_interval_seconds = 60\n")
        self.metrics = Metrics()
        self.lifetime = Lifetime()
        self.clock = FakeClock()
        self.cycles: list[tuple[Trigger, set[str] | None]] = []
        self.sweeps = 0
        self.mode = SyncMode(
            self.settings,
            self.metrics,
            run_cycle=self.run,
            request_sweep=self.sweep,
            lifetime=self.lifetime,
            clock=self.clock,
        )

    def run(self, trigger: Trigger, only: set[str] | None) -> CycleReport | None:
        self.cycles.append((trigger, only))
        return None

    def sweep(self) -> None:
        self.sweeps += 1

    def tick(self) -> tuple[Trigger, set[str] | None]:
        self.mode.tick()
        return self.cycles[-1]

    def gauge(self, mode: str) -> float | None:
        return self.metrics.registry.get_sample_value("syncd_sync_mode", {"mode": mode})


def test_without_a_source_every_tick_sweeps_everything(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.mode.configure({})
    assert harness.tick() == (Trigger.INTERVAL, None)
    assert harness.mode.snapshot()["reason"] == "no notification source configured"
    assert harness.gauge(INTERVAL) == 1.0


def test_a_connection_switches_to_backstop_once_and_ticks_take_slices(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.mode.configure({"audit": 1})
    harness.clock.now = 1100.0
    harness.mode.connections("audit", 1)
    harness.mode.connections("audit", 2)  # still connected: no second sweep
    assert harness.sweeps == 1 and harness.gauge(BACKSTOP) == 1.0
    first, second, third = harness.tick(), harness.tick(), harness.tick()
    assert first[0] is Trigger.BACKSTOP and second[0] is Trigger.BACKSTOP
    assert first[1] is not None and second[1] is not None
    assert first[1] | second[1] == set(NAMES) and not first[1] & second[1]
    assert third == first  # the third tick starts the sweep again
    snapshot = harness.mode.snapshot()
    assert (snapshot["mode"], snapshot["since"], snapshot["slices"]) == (BACKSTOP, 1100.0, 2)
    assert (snapshot["interval_seconds"], snapshot["backstop_interval_seconds"]) == (30, 60)


def test_failed_mappings_are_retried_by_every_backstop_tick_until_they_pass(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.mode.configure({"audit": 1})
    harness.mode.connections("audit", 1)
    harness.mode.note_results(report_for(Trigger.NOTIFICATION, ["m0", "m5"], failed={"m5"}))
    assert harness.tick()[1] == {"m0", "m1", "m2", "m5"}  # slice 0 of secrets m0..m5, plus the retry
    assert harness.tick()[1] == {"m3", "m4", "m5"}
    harness.mode.note_results(report_for(Trigger.BACKSTOP, ["m5"]))
    assert harness.tick()[1] == {"m0", "m1", "m2"}


def test_a_lost_cycle_makes_the_next_tick_a_full_sweep(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.mode.configure({"audit": 1})
    harness.mode.connections("audit", 1)
    harness.mode.note_lost_cycle()
    assert harness.tick() == (Trigger.INTERVAL, None)
    assert harness.tick()[0] is Trigger.BACKSTOP


def test_a_drop_returns_to_interval_and_sweeps_a_source_that_cannot_start_says_so(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.mode.configure({"audit": 1, "events": 2})
    harness.mode.connections("audit", 1)
    harness.clock.now += harness.settings().sync.interval_seconds  # not flapping: each change sweeps
    harness.mode.connections("audit", 0)
    assert harness.sweeps == 2 and harness.mode.snapshot()["mode"] == INTERVAL
    harness.mode.failed("events")  # already in interval mode: no change, no sweep
    assert harness.sweeps == 2
    assert "events: could not start" in harness.mode.snapshot()["reason"]


def test_flapping_connections_sweep_at_most_once_per_interval_and_the_next_tick_sweeps_all(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.mode.configure({"audit": 1})
    for _ in range(10):  # a connection opened and closed ten times within one interval
        harness.mode.connections("audit", 0)
        harness.mode.connections("audit", 1)
    assert harness.sweeps == 1 and harness.mode.snapshot()["mode"] == BACKSTOP
    # In backstop mode a tick reconciles one slice; this one sweeps everything the flapping skipped.
    assert harness.tick() == (Trigger.INTERVAL, None)
    assert harness.tick()[0] == Trigger.BACKSTOP


def test_while_stopping_connections_change_nothing(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.mode.configure({"audit": 1})
    harness.lifetime.begin_stopping()
    harness.mode.connections("audit", 1)
    assert harness.sweeps == 0 and harness.mode.snapshot()["mode"] == INTERVAL
