"""This replica's part in leader election, as the service sees it.

With an elector (``[leader_election]``, or a ``SoleWriter`` for one process), every replica serves
its endpoints and listens to notifications (a Vault audit device must always find a listener), but
only the leader runs cycles: a follower's cycles are skipped. Taking the Lease runs a ``takeover``
cycle over the state the previous leader left; losing it ends the process (exit code 1) so that
Kubernetes restarts it as a follower. Without an elector (tests), the service always leads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from syncd.app.leadership.sole import Leadership, SoleWriter
from syncd.app.service.parts import StateLike
from syncd.app.service.schedule import TAKEOVER_JOB, Schedule
from syncd.engine.report import CycleReport, Trigger
from syncd.errors import SyncdError

log = structlog.get_logger("syncd.service")

EXIT_LEADERSHIP_LOST = 1  # Kubernetes restarts the pod, which rejoins as a follower


class LeaderRole:
    def __init__(
        self,
        elector: Leadership | None,
        *,
        state: StateLike,
        schedule: Schedule,
        run_cycle: Callable[[Trigger], CycleReport | None],
        request_exit: Callable[[int], None],
    ) -> None:
        self._elector = elector
        self._state = state
        self._schedule = schedule
        self._run_cycle = run_cycle
        self._request_exit = request_exit

    def leading(self) -> bool:
        return self._elector is None or self._elector.is_leader

    def leader_identity(self) -> str | None:
        return None if self._elector is None else self._elector.leader_identity

    def start(self) -> None:
        if self._elector is not None:
            self._elector.start()

    def stop(self) -> None:
        """Last at shutdown, after the state's final write: a follower may take over at once."""
        if self._elector is not None:
            self._elector.stop()

    def on_started_leading(self) -> None:
        """Called by the elector (its thread): the takeover runs as a job, off the renewal loop."""
        self._schedule.once(self.take_over, TAKEOVER_JOB, replace=True)

    def on_stopped_leading(self) -> None:
        """Called by the elector: the Lease was not renewed in time. Writes already stop at the
        gate; the process exits (code 1) so Kubernetes restarts it as a follower."""
        log.error("leadership lost; exiting so that this replica restarts as a follower")
        self._request_exit(EXIT_LEADERSHIP_LOST)

    def take_over(self) -> None:
        """A new leader reads the state the previous one left (never a cached copy), then reconciles."""
        try:
            self._state.reload()
        except SyncdError as exc:
            log.error("takeover: cannot read the state", error_code=exc.reason, error=str(exc))
            return
        log.info("took over as leader; reconciling")
        self._run_cycle(Trigger.TAKEOVER)

    def status(self) -> dict[str, Any]:
        elector = self._elector
        if elector is None:
            return {"enabled": False, "role": "leader"}
        return {
            "enabled": not isinstance(elector, SoleWriter),  # a SoleWriter: no [leader_election]
            "identity": elector.identity,
            "role": "leader" if elector.is_leader else "follower",
            "leader": elector.leader_identity,
        }


__all__ = ["EXIT_LEADERSHIP_LOST", "LeaderRole"]
