"""Sync mode and the backstop sweep, as the service runs them (the pure parts are ``sweep``).

The mode follows the notification sources' open connections (``SyncModeTracker``); the
``syncd_sync_mode`` gauge shows it. The interval job (``tick``) reconciles everything in interval
mode; in backstop mode the next slice of the secrets plus the mappings whose last cycle failed.
Every change of mode asks for a full sweep at once (``request_sweep``): into interval mode for the
writes whose notifications the broken connection lost, into backstop mode for those made while no
source was connected. A queued cycle that was lost (skipped, crashed) makes the next tick a full
sweep too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from syncd.app.notify.flapping import SweepSpacing
from syncd.app.service.parts import MetricsLike
from syncd.app.service.running import Lifetime, SettingsInForce
from syncd.app.service.sweep import BACKSTOP, ModeChange, SweepSlicer, SyncModeMetrics, SyncModeTracker
from syncd.engine.report import CycleReport, Trigger

log = structlog.get_logger("syncd.service")

RunCycle = Callable[[Trigger, "set[str] | None"], "CycleReport | None"]


class SyncMode:
    def __init__(
        self,
        settings: SettingsInForce,
        metrics: MetricsLike,
        *,
        run_cycle: RunCycle,
        request_sweep: Callable[[], object],
        lifetime: Lifetime,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._run_cycle = run_cycle
        self._request_sweep = request_sweep
        self._lifetime = lifetime
        self._clock = clock
        self._lock = threading.Lock()  # guards the fields below
        self._tracker = SyncModeTracker({}, clock())  # replaced at start, once the sources are known
        self._slicer = SweepSlicer()
        self._retry: set[str] = set()  # mappings whose last cycle failed: every backstop tick retries them
        self._sweep_due = False  # a queued cycle was lost: the next tick sweeps everything
        self._sweep_spacing = SweepSpacing()  # mode changes sweep at most once per interval

    def configure(self, needed: Mapping[str, int]) -> None:
        """The configured sources, each with the open connections that make it connected."""
        with self._lock:
            self._tracker = SyncModeTracker(needed, self._clock())
            self._publish_locked()

    def connections(self, source: str, count: int) -> None:
        """A source's open connections (called under that source's lock: quick, no callback)."""
        with self._lock:
            if self._lifetime.stopping:
                return
            change = self._tracker.connections(source, count, self._clock())
            if change is not None:
                self._publish_locked()  # under the lock: two sources never publish out of order
        if change is not None:
            self._changed(change)

    def failed(self, source: str) -> None:
        """A source could not start (and will not connect)."""
        with self._lock:
            change = self._tracker.failed(source, self._clock())
            if change is not None:
                self._publish_locked()
        if change is not None:
            self._changed(change)

    def tick(self) -> None:
        """The interval job: everything in interval mode; in backstop mode the next slice plus retries."""
        settings = self._settings()
        with self._lock:
            backstop = self._tracker.mode == BACKSTOP and not self._sweep_due
            self._sweep_due = False
            if backstop:
                names, index, count = self._slicer.next_slice(settings)
                retries = set(self._retry)
        if not backstop:
            self._run_cycle(Trigger.INTERVAL, None)
            return
        log.debug("backstop slice", slice=index, slices=count, mappings=len(names), retries=len(retries))
        self._run_cycle(Trigger.BACKSTOP, set(names) | retries)

    def note_results(self, report: CycleReport) -> None:
        """A finished cycle: its failed mappings are retried by every backstop tick until they pass."""
        with self._lock:
            for result in report.results:
                (self._retry.add if result.failed else self._retry.discard)(result.mapping)

    def note_lost_cycle(self) -> None:
        with self._lock:
            self._sweep_due = True

    def snapshot(self) -> dict[str, Any]:
        """The mode in force, why and since when, and where the backstop sweep stands."""
        settings = self._settings()
        with self._lock:
            body = self._tracker.snapshot()
            body.update(self._slicer.position(settings))
        body["interval_seconds"] = settings.sync.interval_seconds
        body["backstop_interval_seconds"] = settings.sync.backstop_seconds
        return body

    def _changed(self, change: ModeChange) -> None:
        level = log.info if change.mode == BACKSTOP else log.warning
        if not self._sweep_spacing.sweep_now(self._clock(), self._settings().sync.interval_seconds):
            level("sync mode changed again; the next tick sweeps every secret", mode=change.mode, reason=change.reason)
            with self._lock:
                self._sweep_due = True  # flapping: at most one extra sweep per interval (notify/flapping.py)
            return
        level(
            "sync mode changed; sweeping every secret now",
            mode=change.mode,
            previous=change.previous,
            reason=change.reason,
        )
        self._request_sweep()

    def _publish_locked(self) -> None:
        """Call with ``_lock`` held (setting a gauge is quick and calls nothing back)."""
        if isinstance(self._metrics, SyncModeMetrics):  # test fakes may not be
            self._metrics.set_sync_mode(self._tracker.mode)


__all__ = ["SyncMode"]
