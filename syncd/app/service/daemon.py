"""The long-running service behind ``syncd run``: ``Service``, the face its users hold.

The command line runs it (``run_forever``), the HTTP server asks it (``healthz``, ``readyz``,
``status``, ``trigger``), the elector calls it back (``on_started_leading``, ``on_stopped_leading``),
the drift checks queue corrections through it (``request_cycle``), and tests drive it without
signals or real time (``start``, ``run_cycle``, ``reload``, ``shutdown``). Each call is handed to
the part whose job it is (``composition`` assembles them):

- ``schedule``: the jobs (startup, interval, Vault token, drift, manual, takeover) and their ids;
- ``triggers``: on-demand cycles: leading edge, coalescing, one drain at a time;
- ``cycle_runner``: one cycle at a time under its hard deadline, hang detection;
- ``cycle_outcomes``: what a finished cycle leaves (last report, metrics, drift and retry notes);
- ``sync_mode``: interval or backstop sweeps from the notification sources' connections;
- ``drift_job``, ``token_upkeep``, ``gauges``, ``leader_role``;
- ``reload``: SIGHUP, with the table of what applies at once and what needs a restart;
- ``status_document``: the JSON of ``/healthz``, ``/readyz`` and ``/status``;
- ``lifecycle``: start, signals, shutdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from syncd.app.notify.audit import AuditListener
from syncd.app.notify.vault_events import VaultEventsSubscriber
from syncd.app.service.composition import compose
from syncd.app.service.leader_role import EXIT_LEADERSHIP_LOST
from syncd.app.service.parts import SchedulerLike, ServerLike, ServiceParts
from syncd.app.service.schedule import (
    DRIFT_JOB,
    MANUAL_JOB,
    RECONCILE_JOB,
    STARTUP_JOB,
    TAKEOVER_JOB,
    TOKEN_JOB,
    default_scheduler,
    drift_tick,
)
from syncd.app.service.triggers import answer_trigger
from syncd.config import LoggingSettings, Settings, load_config
from syncd.engine.report import CycleReport, Trigger

ServerFactory = Callable[["Service"], ServerLike]


def configure_logging_from(logging: LoggingSettings) -> None:
    """The default way a reload applies ``[logging]``: the file's format and level, on stdout."""
    from syncd.app.service.logs import configure_logging  # noqa: PLC0415 - only when [logging] changed

    configure_logging(format=logging.format, level=logging.level)


class Service:
    def __init__(
        self,
        settings: Settings,
        config_path: Path | str,
        parts: ServiceParts,
        *,
        clock: Callable[[], float] = time.time,
        scheduler: SchedulerLike | None = None,
        server_factory: ServerFactory | None = None,
        loader: Callable[[Path], Settings] = load_config,
        hang_slack_seconds: float = 10.0,
        apply_logging: Callable[[LoggingSettings], None] | None = None,
    ) -> None:
        """``apply_logging``: how a reload applies a changed ``[logging]`` (default: the file's
        format and level, on stdout; the command line passes one that keeps its flags first)."""
        self.config_path = Path(config_path)
        factory = server_factory
        self._core = compose(
            settings,
            self.config_path,
            parts,
            clock=clock,
            scheduler=scheduler if scheduler is not None else default_scheduler(),
            make_server=None if factory is None else lambda: factory(self),
            loader=loader,
            apply_logging=apply_logging if apply_logging is not None else configure_logging_from,
            hang_slack_seconds=hang_slack_seconds,
        )

    @property
    def settings(self) -> Settings:
        """The settings in force (after a reload: the new ones, but the running values of the keys
        that need a restart)."""
        return self._core.settings()

    @property
    def server(self) -> ServerLike | None:
        return self._core.lifecycle.server

    @property
    def audit_listener(self) -> AuditListener | None:
        return self._core.lifecycle.notifications.audit_listener

    @property
    def vault_events(self) -> VaultEventsSubscriber | None:
        return self._core.lifecycle.notifications.vault_events

    # -- lifecycle (``lifecycle``) ---------------------------------------------------------------

    def start(self) -> None:
        self._core.lifecycle.start()

    def shutdown(self) -> None:
        self._core.lifecycle.shutdown()

    def run_forever(self) -> int:
        """Start, then reload on SIGHUP and stop on SIGTERM/SIGINT. 0, or 1 when leadership was lost."""
        return self._core.lifecycle.run_forever()

    def reload(self) -> bool:
        """Re-read the config file; True when it was valid (and applied as ``reload`` says)."""
        return self._core.reloader.reload()

    # -- cycles (``cycle_runner``, ``triggers``) ------------------------------------------------

    def run_cycle(
        self, trigger: Trigger | str = Trigger.INTERVAL, only_mappings: Iterable[str] | None = None
    ) -> CycleReport | None:
        """Run one reconciliation now under the hard deadline; None when none ran (or it hung, or
        this replica is a follower)."""
        return self._core.runner.run(Trigger(trigger), only_mappings)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no cycle thread runs; False if one still does after ``timeout`` seconds."""
        return self._core.runner.wait_idle(timeout)

    def trigger(self, mapping: str | None, *, source: Trigger | str = Trigger.MANUAL) -> tuple[int, dict[str, Any]]:
        """Queue a reconcile of one mapping (or all); repeated triggers coalesce. HTTP status + body.
        ``source``: ``MANUAL`` (``POST /trigger``) or ``NOTIFICATION``; a cycle merging both is manual."""
        leader = self._core.leader
        return answer_trigger(
            self._core.triggers,
            mapping,
            Trigger(source),
            known={m.name for m in self.settings.mappings},
            leader=(leader.leading(), leader.leader_identity()),
        )

    def request_cycle(self, mappings: set[str]) -> None:
        """Reconcile these mappings soon (drift corrections); merges with other queued requests."""
        self._core.triggers.request(mappings, Trigger.DRIFT)

    # -- leadership (``leader_role``) -------------------------------------------------------------

    def on_started_leading(self) -> None:
        self._core.leader.on_started_leading()

    def on_stopped_leading(self) -> None:
        self._core.leader.on_stopped_leading()

    # -- what the HTTP server serves (``status_document``, ``sync_mode``) ---------------------------

    def healthz(self) -> tuple[bool, dict[str, Any]]:
        return self._core.status.healthz()

    def readyz(self) -> tuple[bool, dict[str, Any]]:
        return self._core.status.readyz()

    def status(self) -> dict[str, Any]:
        return self._core.status.status()

    def sync_mode(self) -> dict[str, Any]:
        return self._core.sync_mode.snapshot()


__all__ = [
    "DRIFT_JOB",
    "EXIT_LEADERSHIP_LOST",
    "MANUAL_JOB",
    "RECONCILE_JOB",
    "STARTUP_JOB",
    "TAKEOVER_JOB",
    "TOKEN_JOB",
    "SchedulerLike",
    "Service",
    "ServiceParts",
    "drift_tick",
]
