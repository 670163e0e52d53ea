"""The service's jobs: the options each gets, and timing that follows a reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.app.service.schedule import DRIFT_JOB, RECONCILE_JOB, Schedule, drift_tick
from tests.app.service.helpers import settings_of
from tests.app.test_service import RecordingScheduler


def test_a_one_off_job_runs_late_or_replaces_only_when_asked() -> None:
    scheduler = RecordingScheduler()
    schedule = Schedule(scheduler)
    schedule.once(print, "now", args=["x"], run_late=True)
    schedule.once(print, "later", delay=60, replace=True)
    assert scheduler.jobs["now"].args == ["x"] and scheduler.jobs["now"].options == {"misfire_grace_time": None}
    assert set(scheduler.jobs["later"].options) == {"run_date"}  # replace_existing is the add_job argument


def test_the_interval_job_never_stacks_and_follows_a_reload(tmp_path: Path) -> None:
    scheduler = RecordingScheduler()
    schedule = Schedule(scheduler)
    old = settings_of(tmp_path, "a")
    schedule.every_interval(print, old.sync)
    options = scheduler.jobs[RECONCILE_JOB].options
    assert (options["seconds"], options["jitter"], options["max_instances"], options["coalesce"]) == (30, 2, 1, True)
    same = settings_of(tmp_path, "a", "b")
    schedule.follow_reload(old, same, drift=True)
    assert scheduler.rescheduled == []  # nothing about the timing changed
    new = settings_of(tmp_path, "a", extra="drift_check_interval_seconds = 60\n")
    schedule.follow_reload(old, new, drift=False)
    assert scheduler.rescheduled == []  # no drift job to reschedule
    schedule.follow_reload(old, new, drift=True)
    assert scheduler.rescheduled == [(DRIFT_JOB, "interval", {"seconds": 6.0})]


@pytest.mark.parametrize(("interval", "tick"), [(5, 1.0), (60, 6.0), (300, 30.0), (3600, 30.0)])
def test_the_drift_job_ticks_a_tenth_of_the_interval_between_1_and_30_seconds(interval: float, tick: float) -> None:
    assert drift_tick(interval) == tick
