"""The long-running service behind ``syncd run``.

``Service`` owns the schedule and the lifecycle; the work is the reconciler's. Jobs (APScheduler 3.x
``BackgroundScheduler``, or any object with the same ``add_job``/``reschedule_job``/``start``/
``shutdown`` subset, which is how tests drive it without real time):

- ``startup``: one reconciliation as soon as the scheduler starts;
- ``reconcile``: every ``sync.interval_seconds`` plus up to ``sync.jitter_seconds``, with
  ``max_instances=1`` and ``coalesce=True`` so a slow cycle never stacks runs. In interval mode a
  tick reconciles everything; in backstop mode (a Vault notification source is connected) the next
  slice of the secrets plus the mappings that failed last time (``syncd.app.service.sweep``);
- ``vault-token``: ``VaultTokenManager.maintain()`` says when it wants to run again;
- ``drift``: every few seconds, the drift checks that are due (``drift_checks.DriftChecker``, its
  own schedule and rate-budget share), on the leader only; a check never overlaps a cycle (it waits
  briefly for one), so syncd's own writes in flight never look like someone else's. A drifted
  mapping is reconciled through ``request_cycle``;
- ``manual``: on-demand cycles: operator triggers from ``POST /trigger``, Vault write
  notifications, and the full sweep at every change of sweep mode. The first request starts a
  cycle at once (leading edge); requests that arrive while one is queued or running merge into one
  follow-up (a set of mappings, or everything), so a write noticed after the running cycle read its
  secret is reconciled by the follow-up, never lost.

Every cycle gets a hard deadline (``now + sync.cycle_timeout_seconds``) passed to the reconciler,
and runs in its own thread that the caller waits on only a little longer than that: a cycle hung
in a call that ignores the deadline is abandoned (logged, /healthz turns unhealthy) instead of
wedging the schedule, and no new cycle starts until it has ended.

``reload()`` (SIGHUP) re-reads the config file: a valid one takes effect at the next cycle, an
invalid one is logged with all its problems and the old one stays. ``shutdown()`` (SIGTERM/SIGINT)
stops triggering, lets an in-flight cycle finish within ``sync.shutdown_grace_seconds``, closes the
state store and the clients, and stops the HTTP server last. ``run_forever()`` is the thin part
that installs signal handlers and blocks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from syncd.app.leadership.sole import SoleWriter
from syncd.app.notify.audit import AuditListener, paths_to_mappings
from syncd.app.notify.flapping import SweepSpacing
from syncd.app.notify.sources import NotificationMetrics, NotificationSources, needed_connections
from syncd.app.notify.vault_events import VaultEventsSubscriber
from syncd.app.service.heap import release_free_memory
from syncd.app.service.parts import BackoffMetrics, SchedulerLike, ServerLike, ServiceParts
from syncd.app.service.sweep import BACKSTOP, ModeChange, SweepSlicer, SyncModeMetrics, SyncModeTracker
from syncd.config import Settings, load_config
from syncd.engine.reconciler import staged_number
from syncd.engine.report import CycleReport
from syncd.errors import ConfigError, SyncdError

log = structlog.get_logger("syncd.service")

RECONCILE_JOB = "reconcile"
STARTUP_JOB = "startup"
TOKEN_JOB = "vault-token"
MANUAL_JOB = "manual"
DRIFT_JOB = "drift"
DRIFT_WAIT_SECONDS = 2.0  # how long a drift check waits for a running cycle before deferring
TAKEOVER_JOB = "takeover"
EXIT_LEADERSHIP_LOST = 1  # Kubernetes restarts the pod, which rejoins as a follower
TOKEN_RETRY_SECONDS = 30.0


ServerFactory = Callable[["Service"], ServerLike]


def drift_tick(interval: float) -> float:
    """How often the drift job looks for due checks: a tenth of the interval, 1 to 30 seconds."""
    return max(1.0, min(30.0, interval / 10))


# -- the service ---------------------------------------------------------------------------------


def _default_scheduler() -> SchedulerLike:
    from apscheduler.schedulers.background import BackgroundScheduler  # noqa: PLC0415 - only for run

    scheduler: SchedulerLike = BackgroundScheduler(timezone="UTC", job_defaults={"max_instances": 1})
    return scheduler


def _label(sources: set[str]) -> str:
    """The trigger label of an on-demand cycle that merges requests from these sources."""
    if "manual" in sources:
        return "manual"
    if "sweep" in sources:
        return "interval"  # the full sweep of a change of sweep mode
    if sources == {"drift"}:
        return "drift"
    return "notification"


def _plain(value: Any) -> Any:
    """A JSON-friendly form of a state record (a dataclass or a plain object)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return dict(value)
    return {k: v for k, v in vars(value).items() if not k.startswith("_")}


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
    ) -> None:
        self._settings = settings
        self.config_path = Path(config_path)
        self._parts = parts
        self._clock = clock
        self._scheduler = scheduler if scheduler is not None else _default_scheduler()
        self._server_factory = server_factory
        self._server: ServerLike | None = None
        self._loader = loader
        self._hang_slack = hang_slack_seconds

        self._lock = threading.Lock()  # guards the fields below
        self._cycle_lock = threading.Lock()  # one cycle starter at a time
        # Reporting a finished cycle (metrics, last report) happens outside the cycle lock, so the
        # next cycle (say, a notification's) need not wait for it; taken before the cycle lock is
        # released, it keeps the reports in cycle order.
        self._report_lock = threading.Lock()
        self._inflight: threading.Thread | None = None
        self._abandoned_since: float | None = None
        self._pending_all = False
        self._pending: set[str] = set()
        self._pending_sources: set[str] = set()
        self._notifications = NotificationSources()
        self._manual_queued = False
        self._manual_seq = 0
        self._started_at: float | None = None
        self._startup_done = False
        self._stopping = False
        self._stopped = False
        self._last_report: CycleReport | None = None
        self._last_cycle_end: float | None = None
        self._commands: queue.Queue[str] = queue.Queue()
        self._exit_code = 0
        # Sweep mode (guarded by _lock): replaced at start() once the sources are known.
        self._mode = SyncModeTracker({}, clock())
        self._slicer = SweepSlicer()
        self._retry: set[str] = set()  # mappings whose last cycle failed: every backstop tick retries them
        self._sweep_due = False  # a queued cycle was lost (skipped, crashed): the next tick sweeps all
        self._sweep_spacing = SweepSpacing()  # mode changes sweep at most once per interval

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._settings

    def start(self) -> None:
        """Start the HTTP server, then the schedule (a startup cycle runs at once)."""
        self._started_at = self._clock()
        metrics = self._parts.metrics
        metrics.configure_mappings([m.name for m in self._settings.mappings])
        metrics.set_ready(False)
        if self._server_factory is not None:
            self._server = self._server_factory(self)
            self._server.start()
        sync = self._settings.sync
        if self._parts.token_manager is not None:
            self._scheduler.add_job(self._maintain_token, "date", id=TOKEN_JOB, replace_existing=True)
        self._scheduler.add_job(self._job_cycle, "date", args=["startup"], id=STARTUP_JOB, misfire_grace_time=None)
        self._scheduler.add_job(
            self._job_tick,
            "interval",
            id=RECONCILE_JOB,
            seconds=sync.interval_seconds,
            jitter=sync.jitter_seconds or None,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(sync.interval_seconds)),
        )
        if self._parts.drift is not None:
            self._scheduler.add_job(
                self._job_drift,
                "interval",
                id=DRIFT_JOB,
                seconds=drift_tick(sync.drift_check_interval_seconds),
                max_instances=1,
                coalesce=True,
            )
        self._scheduler.start()
        self._start_leader_election()
        tokens = self._parts.token_manager
        with self._lock:
            self._mode = SyncModeTracker(needed_connections(self._settings, tokens is not None), self._clock())
            self._publish_mode_locked()
        self._notifications.start(
            self._settings,
            self._on_vault_write,
            tokens.current_token if tokens else None,
            metrics if isinstance(metrics, NotificationMetrics) else None,  # test fakes may not be
            on_connections=self._on_source_connections,
        )
        for source in sorted(self._notifications.failed):
            self._on_source_failed(source)
        log.info(
            "service started",
            mappings=len(self._settings.mappings),
            interval_seconds=sync.interval_seconds,
            config=str(self.config_path),
        )

    # -- leadership -------------------------------------------------------------------------

    def _start_leader_election(self) -> None:
        """With an elector, every replica serves its endpoints and listens to notifications (a
        Vault audit device must always find a listener), but only the leader runs cycles: the
        startup cycle of a follower is skipped, and taking the Lease runs a ``takeover`` cycle."""
        elector = self._parts.leadership
        if elector is None:
            return
        elector.start()

    def _leading(self) -> bool:
        elector = self._parts.leadership
        return elector is None or elector.is_leader

    def on_started_leading(self) -> None:
        """Called by the elector (its thread): the takeover runs as a job, off the renewal loop."""
        self._scheduler.add_job(self._take_over, "date", id=TAKEOVER_JOB, replace_existing=True)

    def on_stopped_leading(self) -> None:
        """Called by the elector: the Lease was not renewed in time. Writes already stop at the
        gate; the process exits (code 1) so Kubernetes restarts it as a follower."""
        log.error("leadership lost; exiting so that this replica restarts as a follower")
        self._exit_code = EXIT_LEADERSHIP_LOST
        self._commands.put("stop")

    def _take_over(self) -> None:
        """A new leader reads the state the previous one left (never a cached copy), then reconciles."""
        try:
            self._parts.state.reload()
        except SyncdError as exc:
            log.error("takeover: cannot read the state", error_code=exc.reason, error=str(exc))
            return
        log.info("took over as leader; reconciling")
        self._job_cycle("takeover")

    def _leadership_status(self) -> dict[str, Any]:
        elector = self._parts.leadership
        if elector is None:
            return {"enabled": False, "role": "leader"}
        return {
            "enabled": not isinstance(elector, SoleWriter),  # a SoleWriter: no [leader_election]
            "identity": elector.identity,
            "role": "leader" if elector.is_leader else "follower",
            "leader": elector.leader_identity,
        }

    @property
    def audit_listener(self) -> AuditListener | None:
        return self._notifications.audit_listener

    @property
    def vault_events(self) -> VaultEventsSubscriber | None:
        return self._notifications.vault_events

    def _on_vault_write(self, path: str) -> None:
        names = paths_to_mappings(self.settings, path)  # current settings: reloads apply
        if names:
            self._queue(names, "notification")

    # -- sweep mode -------------------------------------------------------------------------

    def _on_source_connections(self, source: str, count: int) -> None:
        """A source's open connections (called under that source's lock: quick, no callback)."""
        with self._lock:
            if self._stopping:
                return
            change = self._mode.connections(source, count, self._clock())
            if change is not None:
                self._publish_mode_locked()  # under the lock: two sources never publish out of order
        if change is not None:
            self._mode_changed(change)

    def _on_source_failed(self, source: str) -> None:
        with self._lock:
            change = self._mode.failed(source, self._clock())
            if change is not None:
                self._publish_mode_locked()
        if change is not None:
            self._mode_changed(change)

    def _mode_changed(self, change: ModeChange) -> None:
        """Sweep everything at once: into interval mode for the writes whose notifications the
        broken connection lost, into backstop mode for those made while no source was connected."""
        level = log.info if change.mode == BACKSTOP else log.warning
        if not self._sweep_spacing.sweep_now(self._clock(), self._settings.sync.interval_seconds):
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
        self._queue(None, "sweep")

    def _publish_mode_locked(self) -> None:
        """Call with ``_lock`` held (setting a gauge is quick and calls nothing back)."""
        metrics = self._parts.metrics
        if isinstance(metrics, SyncModeMetrics):  # test fakes may not be
            metrics.set_sync_mode(self._mode.mode)

    def sync_mode(self) -> dict[str, Any]:
        """The sweep mode in force, why and since when, and where the backstop sweep stands."""
        with self._lock:
            body = self._mode.snapshot()
            body.update(self._slicer.position(self._settings))
        sync = self._settings.sync
        body["interval_seconds"] = sync.interval_seconds
        body["backstop_interval_seconds"] = sync.backstop_seconds
        return body

    def _job_tick(self) -> None:
        """The interval job: everything in interval mode; in backstop mode the next slice plus retries."""
        with self._lock:
            backstop = self._mode.mode == BACKSTOP and not self._sweep_due
            self._sweep_due = False
            if backstop:
                names, index, count = self._slicer.next_slice(self._settings)
                retries = set(self._retry)
        if not backstop:
            self._job_cycle("interval")
            return
        log.debug("backstop slice", slice=index, slices=count, mappings=len(names), retries=len(retries))
        try:
            self.run_cycle("backstop", set(names) | retries)
        except Exception as exc:
            log.error("cycle job crashed", trigger="backstop", error_code=type(exc).__name__)

    def shutdown(self) -> None:
        """Stop triggering, let an in-flight cycle finish within the grace, close, stop the server."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            inflight = self._inflight
        log.info("service stopping")
        self._notifications.stop()  # outside the lock: it joins the threads that call trigger()
        self._parts.metrics.set_ready(False)
        try:
            self._scheduler.shutdown(wait=False)
        except Exception as exc:
            log.debug("scheduler shutdown", error=type(exc).__name__)
        grace = self._settings.sync.shutdown_grace_seconds
        give_up_at = time.monotonic() + grace
        if inflight is not None and inflight.is_alive():
            log.info("waiting for the in-flight cycle", grace_seconds=grace)
            inflight.join(grace)
            if inflight.is_alive():
                log.warning("in-flight cycle did not finish within the shutdown grace", grace_seconds=grace)
        # Let the cycle's bookkeeping (metrics, last report) finish too, within what is left.
        for lock in (self._cycle_lock, self._report_lock):
            if lock.acquire(timeout=max(0.0, give_up_at - time.monotonic())):
                lock.release()
        try:
            self._parts.state.close()
        except SyncdError as exc:
            log.error("closing the state store failed", error=str(exc))
        for close in self._parts.closers:
            try:
                close()
            except Exception as exc:
                log.warning("closing a client failed", error=type(exc).__name__)
        if self._parts.leadership is not None:
            # Last, after the state's final write: a follower may take over the moment it is released.
            self._parts.leadership.stop()
        if self._server is not None:
            self._server.stop()
        with self._lock:
            self._stopped = True
        log.info("service stopped")

    def run_forever(self) -> int:
        """Start, then handle SIGHUP (reload) and SIGTERM/SIGINT (stop) until stopped. Returns 0, or
        1 when leadership was lost."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            self._commands.put("reload" if signum == signal.SIGHUP else "stop")

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            self.start()
            while True:
                command = self._commands.get()
                if command == "reload":
                    self.reload()
                else:
                    break
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self._exit_code

    @property
    def server(self) -> ServerLike | None:
        return self._server

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no cycle thread is running; False if one still is after ``timeout`` seconds."""
        with self._lock:
            inflight = self._inflight
        if inflight is not None:
            inflight.join(timeout)
            return not inflight.is_alive()
        return True

    # -- cycles -----------------------------------------------------------------------------

    def run_cycle(self, trigger: str = "interval", only_mappings: Iterable[str] | None = None) -> CycleReport | None:
        """Run one reconciliation under the hard deadline; ``None`` when none ran (or it hung, or this
        replica is a follower)."""
        if not self._leading():
            log.debug("not the leader; no cycle", trigger=trigger)
            return None
        with self._cycle_lock:
            with self._lock:
                if self._stopping:
                    return None
                previous = self._inflight
            if previous is not None and previous.is_alive():
                log.error("previous cycle still running past its deadline; skipping", trigger=trigger)
                return None
            with self._lock:
                self._abandoned_since = None
            timeout = self._settings.sync.cycle_timeout_seconds
            deadline = self._clock() + timeout
            only = None if only_mappings is None else sorted(set(only_mappings))
            box: dict[str, Any] = {}

            def work() -> None:
                try:
                    self._ensure_token()
                    box["report"] = self._parts.reconciler.reconcile(
                        trigger=trigger, only_mappings=only, deadline=deadline
                    )
                except BaseException as exc:
                    box["error"] = exc

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
            self._report_lock.acquire()  # before the cycle lock is released: reports stay in order
        try:
            return self._finish_cycle(trigger, box)
        finally:
            self._report_lock.release()

    def _finish_cycle(self, trigger: str, box: dict[str, Any]) -> CycleReport | None:
        if "error" in box:
            error = box["error"]
            # Not str(error): an unexpected exception's text is not vetted for values.
            detail = str(error) if isinstance(error, SyncdError) else type(error).__name__
            log.error("cycle failed", trigger=trigger, error_code=type(error).__name__, error=detail)
            with self._lock:
                self._startup_done = self._startup_done or trigger == "startup"
            self._update_gauges()
            return None
        report: CycleReport = box["report"]
        with self._lock:
            for result in report.results:
                (self._retry.add if result.failed else self._retry.discard)(result.mapping)
            self._last_report = report
            self._last_cycle_end = self._clock()
            if trigger == "startup":
                self._startup_done = True
        self._parts.metrics.record_cycle(report)
        release_free_memory()  # the cycle's transient objects are gone: give their pages back
        if self._parts.drift is not None:
            self._parts.drift.note_cycle(report)
        self._update_gauges()
        failed = [r.mapping for r in report.results if r.failed]
        log.info(
            "cycle finished",
            trigger=trigger,
            cycle_id=report.cycle_id,
            mappings=len(report.results),
            failed=len(failed),
            pushes=len(report.pushes),
            timed_out=report.timed_out,
            seconds=round(report.finished_at - report.started_at, 3),
        )
        return report

    def request_cycle(self, mappings: set[str]) -> None:
        """Reconcile these mappings soon (drift corrections); merges with other queued requests."""
        self._queue(mappings, "drift")

    def _job_drift(self) -> None:
        drift = self._parts.drift
        with self._lock:
            stopping = self._stopping
        if drift is None or stopping or not self._leading():  # a follower neither checks nor corrects
            return
        try:
            drift.run_due(self._between_cycles)
        except Exception as exc:  # a bug in a check must not end the schedule; never the text (values)
            log.error("drift job crashed", error_code=type(exc).__name__)

    @contextlib.contextmanager
    def _between_cycles(self) -> Iterator[bool]:
        """True (and no cycle starts meanwhile) once no cycle runs or is being accounted for. Waits a
        little: the drift job and the reconcile tick may fire in phase, and the check must not
        lose to the cycle every time."""
        if not self._cycle_lock.acquire(timeout=DRIFT_WAIT_SECONDS):
            yield False
            return
        try:
            yield True
        finally:
            self._cycle_lock.release()

    def _job_cycle(self, trigger: str) -> None:
        try:
            self.run_cycle(trigger)
        except Exception as exc:
            log.error("cycle job crashed", trigger=trigger, error_code=type(exc).__name__)

    def _ensure_token(self) -> None:
        tokens = self._parts.token_manager
        if tokens is None:
            return
        try:
            tokens.ensure_token()
        except SyncdError as exc:
            log.error("vault login failed before the cycle", error_code=exc.reason, error=str(exc))

    def _maintain_token(self) -> None:
        tokens = self._parts.token_manager
        if tokens is None:
            return
        try:
            delay = max(1.0, float(tokens.maintain()))
        except SyncdError as exc:
            log.error("vault token maintenance failed", error_code=exc.reason, error=str(exc))
            delay = TOKEN_RETRY_SECONDS
        self._update_gauges()
        with self._lock:
            if self._stopping:
                return
        self._scheduler.add_job(
            self._maintain_token,
            "date",
            id=TOKEN_JOB,
            replace_existing=True,
            run_date=datetime.now(UTC) + timedelta(seconds=delay),
        )

    def _update_gauges(self) -> None:
        metrics = self._parts.metrics
        if self._parts.token_manager is not None:
            metrics.set_vault_token_expiry(self._parts.token_manager.expires_at)
        if self._parts.rate_budget is not None:
            metrics.set_rate_budget(self._parts.rate_budget.remaining())
        if self._parts.script_health is not None and isinstance(metrics, BackoffMetrics):
            metrics.set_script_backoff(self._parts.script_health())
        metrics.set_ready(self.readyz()[0])

    # -- manual triggers --------------------------------------------------------------------

    def trigger(self, mapping: str | None, *, source: str = "manual") -> tuple[int, dict[str, Any]]:
        """Queue a reconcile of one mapping (or all); repeated triggers coalesce. HTTP status + body.

        ``source`` labels the cycle: "manual" (``POST /trigger``) or "notification" (a Vault write);
        a cycle that merges both counts as manual.
        """
        known = {m.name for m in self._settings.mappings}
        if mapping is not None and mapping not in known:
            return 404, {"error": "unknown mapping", "mapping": mapping}
        if not self._leading():
            return 503, {"error": "not the leader", "leader": self._leadership_status().get("leader")}
        queued = self._queue(None if mapping is None else {mapping}, source)
        if queued is None:
            return 503, {"error": "shutting down"}
        return 202, {"queued": True, "mapping": mapping or "*", "coalesced": not queued}

    def _queue(self, mappings: Iterable[str] | None, source: str) -> bool | None:
        """Ask for a cycle of these mappings (None: all). True: a cycle was queued for it; False: it
        merged into one already queued or running; None: shutting down."""
        with self._lock:
            if self._stopping:
                return None
            if mappings is None:
                self._pending_all = True
            else:
                self._pending.update(mappings)
            self._pending_sources.add(source)
            already = self._manual_queued
            self._manual_queued = True
            self._manual_seq += 1
            seq = self._manual_seq
        if not already:
            self._scheduler.add_job(self._drain_manual, "date", id=f"{MANUAL_JOB}-{seq}", misfire_grace_time=None)
        return not already

    def _drain_manual(self) -> None:
        while True:
            with self._lock:
                if self._stopping or (not self._pending_all and not self._pending):
                    self._manual_queued = False
                    return
                only = None if self._pending_all else set(self._pending)
                label = _label(self._pending_sources)
                self._pending_all = False
                self._pending.clear()
                self._pending_sources.clear()
            report = None
            try:
                report = self.run_cycle(label, only)
            except Exception as exc:
                log.error("manual cycle crashed", error_code=type(exc).__name__)
            if report is None:
                with self._lock:  # skipped, crashed or abandoned: what it carried must not be lost
                    self._sweep_due = self._sweep_due or not self._stopping

    # -- reload -----------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the config file; apply it at the next cycle when valid. True when applied."""
        try:
            new = self._loader(self.config_path)
        except ConfigError as exc:
            log.error(
                "configuration reload refused; keeping the running configuration",
                config=str(self.config_path),
                problems=[str(p) for p in exc.problems],
            )
            return False
        old = self._settings
        restart_needed = [
            section
            for section, before, after in (
                ("vault", old.vault, new.vault),
                ("cloudflare", old.cloudflare, new.cloudflare),
                ("server", old.server, new.server),
                ("notifications", old.notifications, new.notifications),
                ("sync.state_path", old.sync.state_path, new.sync.state_path),
                ("sync.fingerprint_key", old.sync.fingerprint_key, new.sync.fingerprint_key),
            )
            if before != after
        ]
        if restart_needed:
            log.warning("configuration sections changed that apply only after a restart", sections=restart_needed)
        self._parts.reconciler.update_settings(new)
        if self._parts.drift is not None:
            self._parts.drift.update_settings(new)
        self._parts.metrics.configure_mappings([m.name for m in new.mappings])
        with self._lock:
            self._settings = new
        if (old.sync.interval_seconds, old.sync.jitter_seconds) != (new.sync.interval_seconds, new.sync.jitter_seconds):
            self._scheduler.reschedule_job(
                RECONCILE_JOB,
                trigger="interval",
                seconds=new.sync.interval_seconds,
                jitter=new.sync.jitter_seconds or None,
            )
        new_tick = drift_tick(new.sync.drift_check_interval_seconds)
        if self._parts.drift is not None and new_tick != drift_tick(old.sync.drift_check_interval_seconds):
            self._scheduler.reschedule_job(DRIFT_JOB, trigger="interval", seconds=new_tick)
        log.info("configuration reloaded", config=str(self.config_path), mappings=len(new.mappings))
        return True

    # -- StatusSource -----------------------------------------------------------------------

    def _max_cycle_age(self) -> float:
        sync = self._settings.sync
        configured = self._settings.server.healthz_max_cycle_age_seconds
        return configured if configured is not None else 3 * sync.interval_seconds + sync.cycle_timeout_seconds

    def healthz(self) -> tuple[bool, dict[str, Any]]:
        """Alive: no abandoned cycle, and a cycle finished recently (or the start was recent)."""
        now = self._clock()
        with self._lock:
            abandoned = self._abandoned_since
            since = self._last_cycle_end if self._last_cycle_end is not None else self._started_at
            stopped = self._stopped
        limit = self._max_cycle_age()
        age = None if since is None else now - since
        problems = []
        if abandoned is not None:
            problems.append("a cycle passed its hard deadline and is still running")
        if age is not None and age > limit:
            problems.append(f"no cycle finished for {age:.0f}s (limit {limit:.0f}s)")
        if stopped:
            problems.append("stopped")
        if not self._leading():
            problems = [p for p in problems if not p.startswith("no cycle finished")]  # followers run none
        body = {"status": "ok" if not problems else "unhealthy", "last_cycle_age_seconds": age, "problems": problems}
        return not problems, body

    def readyz(self) -> tuple[bool, dict[str, Any]]:
        """Ready: the startup cycle ran, the Vault token is valid, not shutting down."""
        with self._lock:
            startup_done = self._startup_done
            stopping = self._stopping
        problems = []
        if not startup_done and self._leading():  # a follower is ready to serve as soon as it runs
            problems.append("startup reconciliation has not finished")
        if stopping:
            problems.append("shutting down")
        tokens = self._parts.token_manager
        if tokens is not None and not tokens.is_valid():
            problems.append("no valid Vault token")
        return not problems, {"status": "ready" if not problems else "not ready", "problems": problems}

    def status(self) -> dict[str, Any]:
        with self._lock:
            report = self._last_report
            started = self._started_at
        mappings = [_plain(s) for s in self._parts.state.all_mapping_status()]
        for mapping in mappings:  # "staged in version N, not deployed" (on_undeployed = "stage")
            mapping["staged_version"] = staged_number(mapping.get("last_error_code"))
        body: dict[str, Any] = {
            "started_at": started,
            "mappings_configured": [m.name for m in self._settings.mappings],
            "mappings": mappings,
            "scripts": self._scripts_status(),
            "last_cycle": None,
            "sync_mode": self.sync_mode(),
            "leadership": self._leadership_status(),
        }
        if report is not None:
            body["last_cycle"] = {
                "cycle_id": report.cycle_id,
                "trigger": report.trigger,
                "started_at": report.started_at,
                "finished_at": report.finished_at,
                "ok": report.ok,
                "timed_out": report.timed_out,
                "pushes": len(report.pushes),
                "failed": [
                    {"mapping": r.mapping, "error_code": r.error_code, "error": r.error}
                    for r in report.results
                    if r.failed
                ],
            }
        return body

    def _scripts_status(self) -> list[dict[str, Any]]:
        """The scripts in backoff (healthy ones are not listed): ``state``, failures, next retry."""
        if self._parts.script_health is None:
            return []
        return [
            {
                "account": h.target.account_id,
                "namespace": h.target.dispatch_namespace,
                "script": h.target.script,
                "state": h.state,
                "consecutive_failures": h.consecutive_failures,
                "backoff_seconds": h.backoff_seconds,
                "next_retry_at": h.next_retry_at,
                "next_retry_at_iso": datetime.fromtimestamp(h.next_retry_at, UTC).isoformat(timespec="seconds"),
                "last_error_code": h.last_error_code,
            }
            for h in self._parts.script_health()
        ]


__all__ = ["SchedulerLike", "Service", "ServiceParts"]
