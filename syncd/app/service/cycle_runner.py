"""One cycle at a time, each under its hard deadline, and a hung one detected and abandoned.

Every cycle gets a deadline (``now + sync.cycle_timeout_seconds``) passed to the reconciler, and
runs in its own thread that the caller waits on only a little longer than that (``hang_slack``): a
cycle hung in a call that ignores the deadline is abandoned (logged, ``/healthz`` turns unhealthy:
``abandoned_since``) instead of wedging the schedule, and no new cycle starts until it has ended.

What a finished cycle leaves behind (metrics, the last report, drift bookkeeping) is the
``CycleOutcomes``' business; it runs outside the cycle lock, so the next cycle (say, a
notification's) need not wait for it, but it is entered before that lock is released, so the
outcomes are told in cycle order.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Protocol

import structlog

from syncd.app.service.parts import ReconcilerLike
from syncd.app.service.running import Lifetime, SettingsInForce
from syncd.engine.drift import DriftCorrection
from syncd.engine.report import CycleReport, Trigger

log = structlog.get_logger("syncd.service")


class CycleOutcomes(Protocol):
    def finished(self, trigger: Trigger, report: CycleReport) -> None: ...

    def failed(self, trigger: Trigger, error: BaseException) -> None: ...


class CycleRunner:
    def __init__(
        self,
        reconciler: ReconcilerLike,
        outcomes: CycleOutcomes,
        *,
        settings: SettingsInForce,
        lifetime: Lifetime,
        leading: Callable[[], bool],
        prepare: Callable[[], None] = lambda: None,
        corrections: Callable[[], Collection[DriftCorrection]] = tuple,
        clock: Callable[[], float] = time.time,
        hang_slack_seconds: float = 10.0,
    ) -> None:
        """``prepare`` runs in the cycle's thread before the reconcile (a Vault login if needed);
        ``corrections`` gives the drift corrections no cycle has confirmed yet (passed to every
        reconcile)."""
        self._reconciler = reconciler
        self._outcomes = outcomes
        self._settings = settings
        self._lifetime = lifetime
        self._leading = leading
        self._prepare = prepare
        self._corrections = corrections
        self._clock = clock
        self._hang_slack = hang_slack_seconds
        self._cycle_lock = threading.Lock()  # one cycle starter at a time
        self._outcome_lock = threading.Lock()  # outcomes in cycle order
        self._lock = threading.Lock()  # guards the two fields below
        self._inflight: threading.Thread | None = None
        self._abandoned_since: float | None = None

    @property
    def abandoned_since(self) -> float | None:
        """When the cycle still running past its hard deadline was abandoned; None: there is none."""
        with self._lock:
            return self._abandoned_since

    def run(self, trigger: Trigger, only_mappings: Iterable[str] | None = None) -> CycleReport | None:
        """Run one reconciliation under the hard deadline; None when none ran (or it hung, or this
        replica is a follower, or the service is stopping)."""
        if not self._leading():
            log.debug("not the leader; no cycle", trigger=trigger)
            return None
        with self._cycle_lock:
            if self._lifetime.stopping:
                return None
            with self._lock:
                previous = self._inflight
            if previous is not None and previous.is_alive():
                log.error("previous cycle still running past its deadline; skipping", trigger=trigger)
                return None
            with self._lock:
                self._abandoned_since = None
            timeout = self._settings().sync.cycle_timeout_seconds
            deadline = self._clock() + timeout
            only = None if only_mappings is None else sorted(set(only_mappings))
            reports: list[CycleReport] = []
            errors: list[BaseException] = []

            def work() -> None:
                try:
                    self._prepare()
                    reports.append(
                        self._reconciler.reconcile(
                            trigger=trigger, only_mappings=only, deadline=deadline, corrections=self._corrections()
                        )
                    )
                except BaseException as exc:
                    errors.append(exc)

            thread = threading.Thread(target=work, name=f"syncd-cycle-{trigger}", daemon=True)
            with self._lock:
                self._inflight = thread
            thread.start()
            thread.join(timeout + self._hang_slack)
            if thread.is_alive():
                with self._lock:
                    self._abandoned_since = self._clock()
                log.error("cycle passed its hard deadline and was abandoned", trigger=trigger, timeout_seconds=timeout)
                return None
            self._outcome_lock.acquire()  # before the cycle lock is released: outcomes stay in order
        try:
            if errors or not reports:
                self._outcomes.failed(trigger, errors[0] if errors else RuntimeError("the cycle left no report"))
                return None
            self._outcomes.finished(trigger, reports[0])
            return reports[0]
        finally:
            self._outcome_lock.release()

    def run_job(self, trigger: Trigger, only_mappings: Iterable[str] | None = None) -> CycleReport | None:
        """``run`` as a scheduler job: a crash is logged (by class: its text is not vetted for
        values) and the schedule goes on."""
        try:
            return self.run(trigger, only_mappings)
        except Exception as exc:
            log.error("cycle job crashed", trigger=trigger, error_code=type(exc).__name__)
            return None

    @contextlib.contextmanager
    def between_cycles(self, wait_seconds: float) -> Iterator[bool]:
        """True (and no cycle starts meanwhile) once no cycle runs or is being accounted for; False
        when one still does after ``wait_seconds``."""
        # Both locks, in the order ``run`` takes them: the cycle lock alone is free again while the
        # ended cycle's outcome is still being told, and the drift check counts syncd's own writes
        # from that outcome (``DriftChecker.note_cycle``).
        give_up_at = time.monotonic() + wait_seconds
        if not self._cycle_lock.acquire(timeout=wait_seconds):
            yield False
            return
        try:
            if not self._outcome_lock.acquire(timeout=max(0.0, give_up_at - time.monotonic())):
                yield False
                return
            try:
                yield True
            finally:
                self._outcome_lock.release()
        finally:
            self._cycle_lock.release()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no cycle thread is running; False if one still is after ``timeout`` seconds."""
        with self._lock:
            inflight = self._inflight
        if inflight is not None:
            inflight.join(timeout)
            return not inflight.is_alive()
        return True

    def wind_down(self, grace_seconds: float) -> None:
        """At shutdown (no new cycle starts): let the cycle in flight finish, and its outcome be
        told, within ``grace_seconds``."""
        give_up_at = time.monotonic() + grace_seconds
        with self._lock:
            inflight = self._inflight
        if inflight is not None and inflight.is_alive():
            log.info("waiting for the in-flight cycle", grace_seconds=grace_seconds)
            inflight.join(grace_seconds)
            if inflight.is_alive():
                log.warning("in-flight cycle did not finish within the shutdown grace", grace_seconds=grace_seconds)
        for lock in (self._cycle_lock, self._outcome_lock):
            if lock.acquire(timeout=max(0.0, give_up_at - time.monotonic())):
                lock.release()


__all__ = ["CycleOutcomes", "CycleRunner"]
