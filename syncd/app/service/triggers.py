"""On-demand cycles: operator triggers (``POST /trigger``), Vault write notifications, drift
corrections, and the full sweep at every change of sync mode.

The first request starts a cycle at once (leading edge: a scheduler job that drains the queue).
Requests that arrive while that job is queued or running merge into one follow-up (a set of
mappings, or everything), so a write noticed after the running cycle read its secret is reconciled
by the follow-up, never lost. A drained cycle that did not run (skipped, crashed, abandoned past its
deadline) is reported to ``on_lost``: the next interval tick then sweeps everything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable
from typing import Any

import structlog

from syncd.app.service.running import Lifetime
from syncd.app.service.schedule import MANUAL_JOB, Schedule
from syncd.engine.report import CycleReport, Trigger

log = structlog.get_logger("syncd.service")

RunCycle = Callable[[Trigger, "set[str] | None"], "CycleReport | None"]


def merged_trigger(sources: Collection[Trigger]) -> Trigger:
    """The trigger of one cycle that serves requests from these sources: an operator's request
    names it, then a full sweep (``INTERVAL``, a change of sync mode); drift alone is ``DRIFT``, the
    checks after announced rotations alone are ``SCHEDULED``; anything else ``NOTIFICATION``."""
    if Trigger.MANUAL in sources:
        return Trigger.MANUAL
    if Trigger.INTERVAL in sources:
        return Trigger.INTERVAL
    for alone in (Trigger.DRIFT, Trigger.SCHEDULED):
        if set(sources) == {alone}:
            return alone
    return Trigger.NOTIFICATION


class TriggerQueue:
    """What on-demand cycles still have to reconcile, and the one job that drains it."""

    def __init__(self, schedule: Schedule, run: RunCycle, *, lifetime: Lifetime, on_lost: Callable[[], None]) -> None:
        self._schedule = schedule
        self._run = run
        self._lifetime = lifetime
        self._on_lost = on_lost
        self._lock = threading.Lock()
        self._all = False
        self._mappings: set[str] = set()
        self._sources: set[Trigger] = set()
        self._queued = False  # a drain job is queued or running
        self._jobs = 0

    def request(self, mappings: Iterable[str] | None, source: Trigger) -> bool | None:
        """Ask for a cycle of these mappings (None: all). True: a cycle was queued for it; False: it
        merged into one already queued or running; None: shutting down."""
        with self._lock:
            if self._lifetime.stopping:
                return None
            if mappings is None:
                self._all = True
            else:
                self._mappings.update(mappings)
            self._sources.add(source)
            already = self._queued
            self._queued = True
            self._jobs += 1
            job = self._jobs
        if not already:
            self._schedule.once(self.drain, f"{MANUAL_JOB}-{job}", run_late=True)
        return not already

    def drain(self) -> None:
        """The job: cycles until nothing is pending (what arrives meanwhile is the next one)."""
        while True:
            with self._lock:
                if self._lifetime.stopping or (not self._all and not self._mappings):
                    self._queued = False
                    return
                only = None if self._all else set(self._mappings)
                trigger = merged_trigger(self._sources)
                self._all = False
                self._mappings.clear()
                self._sources.clear()
            report = None
            try:
                report = self._run(trigger, only)
            except Exception as exc:
                log.error("manual cycle crashed", error_code=type(exc).__name__)
            if report is None and not self._lifetime.stopping:
                self._on_lost()  # skipped, crashed or abandoned: what it carried must not be lost


def answer_trigger(
    queue: TriggerQueue,
    mapping: str | None,
    source: Trigger,
    *,
    known: Collection[str],
    leader: tuple[bool, str | None],
) -> tuple[int, dict[str, Any]]:
    """The HTTP answer to a trigger of one mapping (or all): 202 queued (``coalesced`` when it merged
    into a queued cycle), 404 unknown mapping, 503 not the leader (``leader``: leading, and who
    leads) or shutting down."""
    if mapping is not None and mapping not in known:
        return 404, {"error": "unknown mapping", "mapping": mapping}
    leading, leader_identity = leader
    if not leading:
        return 503, {"error": "not the leader", "leader": leader_identity}
    queued = queue.request(None if mapping is None else {mapping}, source)
    if queued is None:
        return 503, {"error": "shutting down"}
    return 202, {"queued": True, "mapping": mapping or "*", "coalesced": not queued}


__all__ = ["TriggerQueue", "answer_trigger", "merged_trigger"]
