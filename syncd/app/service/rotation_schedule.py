"""Checks just after the rotations Vault announced: a static role's new password without fast polling.

Vault's database secrets engine rotates a static role's password by itself, every
``rotation_period``; no request is made that an audit device or an event could report. Each read of
the role says when the next rotation is due (``ttl``), and the engine reports that time per mapping
(``CycleReport.next_checks``). ``RotationSchedule`` turns those times into one-shot reconciles of
exactly those mappings, ``margin_seconds`` after the announced time, so a scheduled rotation reaches
the Worker within about a second while Vault sees one read per rotation (plus the backstop's).

When Vault says a rotation is due already (``ttl`` 0: it has not rotated yet, or its rotation keeps
failing and is retried), the mapping is looked at again after ``min_gap_seconds``, doubling each
time up to ``max_gap_seconds``, so a role stuck in a failing rotation costs a few reads an hour, not
one a second. The latest report for a mapping replaces what was scheduled for it.

One APScheduler ``date`` job (id ``rotation-checks``) is kept for the earliest due time; when it
fires, every mapping due by then is requested at once (one cycle) and the job is set for the next.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import structlog

from syncd.app.service.parts import SchedulerLike
from syncd.config import Settings
from syncd.engine.report import CycleReport
from syncd.retrying import Backoff

log = structlog.get_logger("syncd.service")

ROTATION_JOB = "rotation-checks"
MARGIN_SECONDS = 0.5  # after the announced rotation: Vault has rotated by then (its queue is precise)
MIN_GAP_SECONDS = 1.0
MAX_GAP_SECONDS = 300.0
_TOGETHER_SECONDS = 0.05  # mappings due this close to the job's time go in the same cycle


class RotationSchedule:
    def __init__(
        self,
        scheduler: SchedulerLike,
        request: Callable[[set[str]], object],
        *,
        clock: Callable[[], float] = time.time,
        margin_seconds: float = MARGIN_SECONDS,
        min_gap_seconds: float = MIN_GAP_SECONDS,
        max_gap_seconds: float = MAX_GAP_SECONDS,
    ) -> None:
        """``request(mappings)`` asks the service for a cycle of those mappings (``Service._queue``)."""
        self._scheduler = scheduler
        self._request = request
        self._clock = clock
        self._margin = margin_seconds
        # No jitter: each mapping backs off on its own schedule already (its role's announced time).
        self._backoff = Backoff(min_gap_seconds, max_gap_seconds, 0.0)
        self._lock = threading.Lock()
        self._due: dict[str, float] = {}  # mapping -> when to check it (epoch seconds)
        self._overdue: dict[str, int] = {}  # mapping -> reports in a row that said "due already"
        self._armed_at: float | None = None

    def due(self) -> dict[str, float]:
        """The scheduled checks (mapping -> epoch seconds), for tests and ``/status``."""
        with self._lock:
            return dict(self._due)

    def note(self, report: CycleReport) -> None:
        """Schedule a check of every mapping of ``report`` that announced a rotation."""
        if not report.next_checks:
            return
        with self._lock:
            now = self._clock()
            for mapping, announced in report.next_checks.items():
                if announced > now:
                    self._overdue.pop(mapping, None)
                    self._due[mapping] = announced + self._margin
                else:
                    late = self._overdue.get(mapping, 0)
                    self._overdue[mapping] = late + 1
                    self._due[mapping] = now + self._backoff.nominal(late + 1)
            self._arm_locked()

    def forget(self, mappings: Iterable[str]) -> None:
        """Drop the checks of mappings that left the configuration."""
        with self._lock:
            for name in mappings:
                self._due.pop(name, None)
                self._overdue.pop(name, None)

    def follow_reload(self, old: Settings, new: Settings) -> None:
        """A reload applier: the checks of mappings that left the configuration are dropped (a
        mapping that stays keeps its check; its next cycle reports a new time if its source moved)."""
        kept = {m.name for m in new.mappings}
        self.forget(m.name for m in old.mappings if m.name not in kept)

    def _arm_locked(self) -> None:
        if not self._due:
            return
        earliest = min(self._due.values())
        if self._armed_at is not None and self._armed_at <= earliest:
            return  # the job fires first and re-arms for this one
        self._armed_at = earliest
        self._scheduler.add_job(
            self._fire,
            "date",
            id=ROTATION_JOB,
            replace_existing=True,
            run_date=datetime.fromtimestamp(earliest, UTC),
            misfire_grace_time=None,
        )

    def _fire(self) -> None:
        with self._lock:
            horizon = self._clock() + _TOGETHER_SECONDS
            due = {name for name, at in self._due.items() if at <= horizon}
            for name in due:
                del self._due[name]
            self._armed_at = None
            self._arm_locked()
        if due:
            log.debug("rotation checks due", mappings=len(due))
            self._request(due)


__all__ = ["ROTATION_JOB", "RotationSchedule"]
