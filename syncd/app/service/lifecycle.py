"""Start, signals and shutdown: the order in which the service's parts begin and end.

``start()``: the HTTP server first (probes answer, not ready yet), then the jobs (a startup cycle
runs at once), the elector, and the Vault notification sources. ``shutdown()`` (SIGTERM/SIGINT)
stops triggering, lets an in-flight cycle finish within ``sync.shutdown_grace_seconds``, closes the
state store and the clients, releases the Lease, and stops the HTTP server last.
``run_forever()`` installs the signal handlers (SIGHUP reloads) and blocks until told to stop.
"""

from __future__ import annotations

import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import structlog

from syncd.app.notify.audit import paths_to_mappings
from syncd.app.notify.sources import NotificationMetrics, NotificationSources, needed_connections
from syncd.app.service.cycle_runner import CycleRunner
from syncd.app.service.drift_job import DriftJob
from syncd.app.service.leader_role import LeaderRole
from syncd.app.service.parts import ServerLike, ServiceParts
from syncd.app.service.running import Lifetime, SettingsInForce
from syncd.app.service.schedule import STARTUP_JOB, Schedule
from syncd.app.service.sync_mode import SyncMode
from syncd.app.service.token_upkeep import TokenUpkeep
from syncd.app.service.triggers import TriggerQueue
from syncd.engine.report import Trigger
from syncd.errors import SyncdError

log = structlog.get_logger("syncd.service")

_RELOAD, _STOP = "reload", "stop"


@dataclass
class Lifecycle:
    """The parts a start and a shutdown go through (all built by ``composition``)."""

    settings: SettingsInForce
    config_path: str
    parts: ServiceParts
    lifetime: Lifetime
    schedule: Schedule
    runner: CycleRunner
    triggers: TriggerQueue
    sync_mode: SyncMode
    leader: LeaderRole
    reload: Callable[[], bool]
    make_server: Callable[[], ServerLike] | None = None
    token_upkeep: TokenUpkeep | None = None
    drift_job: DriftJob | None = None
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.server: ServerLike | None = None
        self.notifications = NotificationSources()
        self._commands: queue.Queue[str] = queue.Queue()
        self._exit_code = 0

    def start(self) -> None:
        """Start the HTTP server, then the schedule (a startup cycle runs at once)."""
        settings = self.settings()
        self.lifetime.begin(self.clock())
        metrics = self.parts.metrics
        metrics.configure_mappings([m.name for m in settings.mappings])
        metrics.set_ready(False)
        if self.make_server is not None:
            self.server = self.make_server()
            self.server.start()
        if self.token_upkeep is not None:
            self.token_upkeep.start()
        self.schedule.once(self.runner.run_job, STARTUP_JOB, args=[Trigger.STARTUP], run_late=True)
        self.schedule.every_interval(self.sync_mode.tick, settings.sync)
        if self.drift_job is not None:
            self.schedule.drift_checks(self.drift_job.run, settings.sync)
        self.schedule.start()
        self.leader.start()
        tokens = self.parts.token_manager
        self.sync_mode.configure(needed_connections(settings, tokens is not None))
        self.notifications.start(
            settings,
            self._on_vault_write,
            tokens.current_token if tokens else None,
            metrics if isinstance(metrics, NotificationMetrics) else None,  # test fakes may not be
            on_connections=self.sync_mode.connections,
        )
        for source in sorted(self.notifications.failed):
            self.sync_mode.failed(source)
        log.info(
            "service started",
            mappings=len(settings.mappings),
            interval_seconds=settings.sync.interval_seconds,
            config=self.config_path,
        )

    def _on_vault_write(self, path: str) -> None:
        names = paths_to_mappings(self.settings(), path)  # the settings in force: reloads apply
        if names:
            self.triggers.request(names, Trigger.NOTIFICATION)

    def shutdown(self) -> None:
        """Stop triggering, let an in-flight cycle finish within the grace, close, stop the server."""
        if not self.lifetime.begin_stopping():
            return
        log.info("service stopping")
        self.notifications.stop()  # it joins the threads that request cycles
        self.parts.metrics.set_ready(False)
        try:
            self.schedule.shutdown()
        except Exception as exc:
            log.debug("scheduler shutdown", error=type(exc).__name__)
        self.runner.wind_down(self.settings().sync.shutdown_grace_seconds)
        try:
            self.parts.state.close()
        except SyncdError as exc:
            log.error("closing the state store failed", error=str(exc))
        for close in self.parts.closers:
            try:
                close()
            except Exception as exc:
                log.warning("closing a client failed", error=type(exc).__name__)
        self.leader.stop()  # after the state's final write: a follower may take over at once
        if self.server is not None:
            self.server.stop()
        self.lifetime.end()
        log.info("service stopped")

    def request_exit(self, code: int) -> None:
        """Leave ``run_forever`` with this exit code (leadership lost)."""
        self._exit_code = code
        self._commands.put(_STOP)

    def run_forever(self) -> int:
        """Start, then handle SIGHUP (reload) and SIGTERM/SIGINT (stop) until stopped. Returns 0, or
        the code ``request_exit`` gave."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            self._commands.put(_RELOAD if signum == signal.SIGHUP else _STOP)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            self.start()
            while self._commands.get() == _RELOAD:
                self.reload()
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self._exit_code


__all__ = ["Lifecycle"]
