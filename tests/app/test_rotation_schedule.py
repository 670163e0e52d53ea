"""RotationSchedule on fake time: a check just after each announced rotation, one cycle for the
mappings due together, backing off while Vault says a rotation is due but has not happened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from syncd.app.service.rotation_schedule import ROTATION_JOB, RotationSchedule
from syncd.engine.report import CycleReport, Trigger
from tests.engine.fakes import keys_mapping, make_settings

T0 = 1_700_000_000.0


class FakeScheduler:
    """Keeps the one date job by id; ``advance`` moves the clock and runs it when due."""

    def __init__(self) -> None:
        self.now = T0
        self.jobs: dict[str, tuple[Callable[[], None], float]] = {}
        self.armed = 0

    def add_job(self, func: Callable[..., Any], trigger: str | None = None, **kwargs: Any) -> None:
        assert trigger == "date" and kwargs["replace_existing"] is True
        run_date: datetime = kwargs["run_date"]
        self.jobs[kwargs["id"]] = (func, run_date.timestamp())
        self.armed += 1

    def reschedule_job(self, job_id: str, jobstore: str | None = None, trigger: str | None = None, **kw: Any) -> None:
        raise AssertionError("not used")

    def start(self) -> None: ...

    def shutdown(self, wait: bool = True) -> None: ...

    def when(self) -> float | None:
        job = self.jobs.get(ROTATION_JOB)
        return None if job is None else job[1]

    def advance(self, to: float) -> None:
        while (job := self.jobs.get(ROTATION_JOB)) is not None and job[1] <= to:
            self.now = max(self.now, job[1])
            del self.jobs[ROTATION_JOB]
            job[0]()
        self.now = to


def report(**next_checks: float) -> CycleReport:
    return CycleReport("c", Trigger.INTERVAL, T0, T0, (), next_checks=dict(next_checks))


def schedule() -> tuple[RotationSchedule, FakeScheduler, list[set[str]]]:
    scheduler = FakeScheduler()
    requested: list[set[str]] = []
    rotations = RotationSchedule(scheduler, requested.append, clock=lambda: scheduler.now, margin_seconds=0.5)
    return rotations, scheduler, requested


def test_a_mapping_is_checked_just_after_the_announced_rotation_and_not_before() -> None:
    rotations, scheduler, requested = schedule()
    rotations.note(report(**{"app-db": T0 + 3600}))
    assert scheduler.when() == T0 + 3600.5
    scheduler.advance(T0 + 3600.4)
    assert requested == []
    scheduler.advance(T0 + 3600.5)
    assert requested == [{"app-db"}]
    assert rotations.due() == {}


def test_mappings_due_together_go_in_one_cycle_and_later_ones_wait_their_turn() -> None:
    rotations, scheduler, requested = schedule()
    rotations.note(report(a=T0 + 60, b=T0 + 60.01, c=T0 + 120))
    scheduler.advance(T0 + 61)
    assert requested == [{"a", "b"}]
    assert scheduler.when() == T0 + 120.5
    scheduler.advance(T0 + 121)
    assert requested == [{"a", "b"}, {"c"}]


def test_the_latest_report_replaces_a_mapping_s_check() -> None:
    rotations, scheduler, requested = schedule()
    rotations.note(report(a=T0 + 60))
    rotations.note(report(a=T0 + 600))  # the role was rotated by hand: the next one is later
    scheduler.advance(T0 + 100)
    assert requested == []
    scheduler.advance(T0 + 601)
    assert requested == [{"a"}]


def test_an_earlier_time_rearms_the_job_and_a_later_one_leaves_it() -> None:
    rotations, scheduler, _ = schedule()
    rotations.note(report(a=T0 + 600))
    rotations.note(report(b=T0 + 60))
    assert scheduler.when() == T0 + 60.5
    armed = scheduler.armed
    rotations.note(report(c=T0 + 900))
    assert scheduler.armed == armed and scheduler.when() == T0 + 60.5


def test_a_rotation_due_but_not_done_is_looked_at_again_backing_off() -> None:
    rotations, scheduler, requested = schedule()
    gaps = []
    for _ in range(12):  # Vault keeps answering ttl 0 (its rotation fails and is retried)
        rotations.note(report(a=scheduler.now))
        due = rotations.due()["a"]
        gaps.append(due - scheduler.now)
        scheduler.advance(due)
    assert gaps[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert max(gaps) == 300.0  # at most one read every five minutes while it stays stuck
    assert len(requested) == 12
    rotations.note(report(a=scheduler.now + 3600))  # rotated at last: back to the announced time
    rotations.note(report(a=scheduler.now))
    assert rotations.due()["a"] == scheduler.now + 1.0


def test_a_forgotten_mapping_is_not_requested() -> None:
    rotations, scheduler, requested = schedule()
    rotations.note(report(a=T0 + 10, b=T0 + 10))
    rotations.forget(["a"])
    scheduler.advance(T0 + 11)
    assert requested == [{"b"}]


def test_a_report_without_static_roles_schedules_nothing() -> None:
    rotations, scheduler, _ = schedule()
    rotations.note(report())
    assert scheduler.jobs == {} and rotations.due() == {}


def test_a_reload_drops_the_checks_of_removed_mappings_only() -> None:
    rotations, scheduler, requested = schedule()
    kept, removed = (keys_mapping(n, f"app/{n}", n, {"k": "K"}) for n in ("kept", "removed"))
    rotations.note(report(kept=T0 + 10, removed=T0 + 10))
    rotations.follow_reload(make_settings([kept, removed]), make_settings([kept]))
    assert set(rotations.due()) == {"kept"}
    scheduler.advance(T0 + 11)
    assert requested == [{"kept"}]
