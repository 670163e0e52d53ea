"""The service's jobs on one scheduler: their ids, their options, and their timing after a reload.

APScheduler 3.x ``BackgroundScheduler`` in production; tests pass any object with the
``SchedulerLike`` subset and run the jobs themselves (no real time). The jobs:

- ``startup``: one cycle as soon as the scheduler starts;
- ``reconcile``: every ``sync.interval_seconds`` plus up to ``sync.jitter_seconds``, with
  ``max_instances=1`` and ``coalesce=True`` so a slow cycle never stacks runs (``sync_mode``);
- ``vault-token``: again whenever the token manager says (``token_upkeep``);
- ``drift``: every ``drift_tick`` seconds, the drift checks that are due (``drift_job``);
- ``manual-N``: one drain of the trigger queue (``triggers``);
- ``takeover``: the cycle of a replica that just took the leader Lease (``leader_role``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd.app.service.parts import SchedulerLike
from syncd.config import Settings, SyncSettings

RECONCILE_JOB = "reconcile"
STARTUP_JOB = "startup"
TOKEN_JOB = "vault-token"
MANUAL_JOB = "manual"
DRIFT_JOB = "drift"
TAKEOVER_JOB = "takeover"


def default_scheduler() -> SchedulerLike:
    from apscheduler.schedulers.background import BackgroundScheduler  # noqa: PLC0415 - only for run

    scheduler: SchedulerLike = BackgroundScheduler(timezone="UTC", job_defaults={"max_instances": 1})
    return scheduler


def drift_tick(interval: float) -> float:
    """How often the drift job looks for due checks: a tenth of the interval, 1 to 30 seconds."""
    return max(1.0, min(30.0, interval / 10))


class Schedule:
    """Adds the service's jobs to the scheduler with the options each needs."""

    def __init__(self, scheduler: SchedulerLike) -> None:
        self.scheduler = scheduler

    def once(
        self,
        func: Callable[..., Any],
        job_id: str,
        *,
        args: Sequence[Any] = (),
        delay: float | None = None,
        replace: bool = False,
        run_late: bool = False,
    ) -> None:
        """Run ``func`` once, now or in ``delay`` seconds. ``replace``: instead of a job of that id
        still waiting; ``run_late``: however late the scheduler gets to it (never dropped as missed)."""
        options: dict[str, Any] = {"id": job_id}
        if args:
            options["args"] = list(args)
        if replace:
            options["replace_existing"] = True
        if run_late:
            options["misfire_grace_time"] = None
        if delay is not None:
            options["run_date"] = datetime.now(UTC) + timedelta(seconds=delay)
        self.scheduler.add_job(func, "date", **options)

    def every_interval(self, func: Callable[[], None], sync: SyncSettings) -> None:
        self.scheduler.add_job(
            func,
            "interval",
            id=RECONCILE_JOB,
            seconds=sync.interval_seconds,
            jitter=sync.jitter_seconds or None,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(sync.interval_seconds)),
        )

    def drift_checks(self, func: Callable[[], None], sync: SyncSettings) -> None:
        self.scheduler.add_job(
            func,
            "interval",
            id=DRIFT_JOB,
            seconds=drift_tick(sync.drift_check_interval_seconds),
            max_instances=1,
            coalesce=True,
        )

    def follow_reload(self, old: Settings, new: Settings, *, drift: bool) -> None:
        """Give the interval job (and with ``drift``, the drift job) the timing of ``new``."""
        before, after = old.sync, new.sync
        if (before.interval_seconds, before.jitter_seconds) != (after.interval_seconds, after.jitter_seconds):
            self.scheduler.reschedule_job(
                RECONCILE_JOB, trigger="interval", seconds=after.interval_seconds, jitter=after.jitter_seconds or None
            )
        tick = drift_tick(after.drift_check_interval_seconds)
        if drift and tick != drift_tick(before.drift_check_interval_seconds):
            self.scheduler.reschedule_job(DRIFT_JOB, trigger="interval", seconds=tick)

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)


__all__ = [
    "DRIFT_JOB",
    "MANUAL_JOB",
    "RECONCILE_JOB",
    "STARTUP_JOB",
    "TAKEOVER_JOB",
    "TOKEN_JOB",
    "Schedule",
    "default_scheduler",
    "drift_tick",
]
