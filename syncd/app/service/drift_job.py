"""The drift job: the drift checks that are due (``drift_checks.DriftChecker``, its own schedule and
rate-budget share), every ``schedule.drift_tick`` seconds, on the leader only.

A check never overlaps a cycle (it waits briefly for one to end, then defers), so syncd's own
writes in flight never look like someone else's. A drifted mapping is reconciled through the
trigger queue (the checker's ``request_cycle``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import structlog

from syncd.app.service.parts import DriftLike
from syncd.app.service.running import Lifetime

log = structlog.get_logger("syncd.service")

DRIFT_WAIT_SECONDS = 2.0  # how long a drift check waits for a running cycle before deferring


class DriftJob:
    def __init__(
        self,
        drift: DriftLike,
        *,
        between_cycles: Callable[[float], AbstractContextManager[bool]],
        leading: Callable[[], bool],
        lifetime: Lifetime,
    ) -> None:
        """``between_cycles(wait)``: True (and no cycle starts meanwhile) once no cycle runs
        (``CycleRunner.between_cycles``)."""
        self._drift = drift
        self._between_cycles = between_cycles
        self._leading = leading
        self._lifetime = lifetime

    def run(self) -> None:
        if self._lifetime.stopping or not self._leading():  # a follower neither checks nor corrects
            return
        try:
            self._drift.run_due(self._exclusive)
        except Exception as exc:  # a bug in a check must not end the schedule; never the text (values)
            log.error("drift job crashed", error_code=type(exc).__name__)

    def _exclusive(self) -> AbstractContextManager[bool]:
        # The drift job and the reconcile tick may fire in phase: the check waits a little, so that
        # it does not lose to the cycle every time.
        return self._between_cycles(DRIFT_WAIT_SECONDS)


__all__ = ["DRIFT_WAIT_SECONDS", "DriftJob"]
