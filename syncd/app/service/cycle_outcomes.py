"""What a finished cycle leaves behind: the last report for ``/status`` and the probes, its metrics,
the drift checker's and the backstop sweep's bookkeeping, the gauges, one log line."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from syncd.app.service.heap import release_free_memory
from syncd.app.service.parts import DriftLike, MetricsLike
from syncd.engine.report import CycleReport, Trigger
from syncd.errors import SyncdError

log = structlog.get_logger("syncd.service")


@dataclass(frozen=True)
class CycleHistorySnapshot:
    last_report: CycleReport | None
    last_cycle_end: float | None  # when the last cycle that produced a report ended
    startup_done: bool  # the startup cycle ran (whatever its outcome)


class CycleHistory:
    """The finished cycles as the probes and ``/status`` see them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot = CycleHistorySnapshot(None, None, startup_done=False)

    def snapshot(self) -> CycleHistorySnapshot:
        with self._lock:
            return self._snapshot

    def finished(self, trigger: Trigger, report: CycleReport, now: float) -> None:
        with self._lock:
            startup_done = self._snapshot.startup_done or trigger == Trigger.STARTUP
            self._snapshot = CycleHistorySnapshot(report, now, startup_done)

    def failed(self, trigger: Trigger) -> None:
        with self._lock:
            if trigger == Trigger.STARTUP:
                self._snapshot = CycleHistorySnapshot(self._snapshot.last_report, self._snapshot.last_cycle_end, True)


class CycleBookkeeping:
    """``CycleOutcomes`` for the service: tells everyone who follows the cycles, in this order."""

    def __init__(
        self,
        history: CycleHistory,
        metrics: MetricsLike,
        *,
        note_results: Callable[[CycleReport], None],
        update_gauges: Callable[[], None],
        drift: DriftLike | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``note_results``: the backstop sweep's retries (``SyncMode.note_results``)."""
        self._history = history
        self._metrics = metrics
        self._note_results = note_results
        self._update_gauges = update_gauges
        self._drift = drift
        self._clock = clock

    def finished(self, trigger: Trigger, report: CycleReport) -> None:
        self._note_results(report)
        self._history.finished(trigger, report, self._clock())
        self._metrics.record_cycle(report)
        release_free_memory()  # the cycle's transient objects are gone: give their pages back
        if self._drift is not None:
            self._drift.note_cycle(report)
        self._update_gauges()
        log.info(
            "cycle finished",
            trigger=trigger,
            cycle_id=report.cycle_id,
            mappings=len(report.results),
            failed=sum(1 for r in report.results if r.failed),
            pushes=len(report.pushes),
            timed_out=report.timed_out,
            seconds=round(report.finished_at - report.started_at, 3),
        )

    def failed(self, trigger: Trigger, error: BaseException) -> None:
        # Not str(error): an unexpected exception's text is not vetted for values.
        detail = str(error) if isinstance(error, SyncdError) else type(error).__name__
        log.error("cycle failed", trigger=trigger, error_code=type(error).__name__, error=detail)
        self._history.failed(trigger)
        self._update_gauges()


__all__ = ["CycleBookkeeping", "CycleHistory", "CycleHistorySnapshot"]
