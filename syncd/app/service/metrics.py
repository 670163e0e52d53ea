"""Prometheus metrics for syncd, in a registry of its own (never the process-global one).

:class:`Metrics` adapts three things to Prometheus: every HTTP attempt of the clients (it is a
``RequestObserver``), every finished ``CycleReport``, and a few gauges the service sets (readiness,
Vault token expiry, Cloudflare rate budget).

Label values are bounded by the configuration: mapping and script names from the config, outcomes
and codes from small fixed sets; anything else collapses to ``"other"``. Vault paths and values are
never labels. :meth:`Metrics.configure_mappings` drops the series of mappings that left the config.
Unknown gauges start as NaN so that an alert comparing them never fires before the first reading.

The Vault notification sources (``audit``: the socket audit device; ``events``: Enterprise event
WebSockets) export their connection gauge only once :meth:`Metrics.configure_notification_sources`
names them, so the disconnection alert fires only where notifications are configured.
"""

from __future__ import annotations

import contextlib
import functools
import math
import platform
import re
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Final

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

import syncd
from syncd import errors
from syncd.app.service.exposition import exposition_chunks
from syncd.app.service.mapping_series import MappingSeries
from syncd.engine.backoff import ScriptHealth
from syncd.engine.report import CycleReport, MappingResult, PushRecord, Reason, Trigger
from syncd.model import DestinationKind, Target

__all__ = ["Metrics"]

log = structlog.get_logger(__name__)

OTHER: Final = "other"
_ONE: Final = 1.0  # shared objects: a gauge set to them allocates nothing
_ZERO: Final = 0.0
CYCLE_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
PROPAGATION_BUCKETS: Final = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
REQUEST_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The label values of syncd_cycles_total{trigger}: the Trigger type's members, each under its own value.
_TRIGGERS: Final = frozenset(trigger.value for trigger in Trigger)
_REQUEST_OUTCOMES: Final = frozenset({"ok", "error", "retry"})
_PUSH_OUTCOMES: Final = frozenset({"ok", "error"})
_OPERATION: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
_CODE: Final = re.compile(r"\d{1,6}|timeout|connection")
NOTIFICATION_SOURCES: Final = frozenset({"audit", "events"})


def _error_classes() -> frozenset[str]:
    found: set[str] = set()
    pending: list[type[BaseException]] = [errors.SyncdError]
    while pending:
        cls = pending.pop()
        found.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return frozenset(found)


@functools.lru_cache(maxsize=1024)
def failure_reason(error_code: str) -> str:
    """The error class of an ``error_code`` ("CloudflareNotDeployed(10215)" -> "CloudflareNotDeployed")."""
    name = error_code.split("(", 1)[0].strip()
    return name if name in _error_classes() else OTHER


def script_label(target: Target) -> str:
    """The ``script`` label: a Worker's name (``namespace/name`` in a dispatch namespace), or
    ``secrets_store:NAME`` for the account's Secrets Store (no script name holds ':')."""
    if target.kind is DestinationKind.SECRETS_STORE:
        return f"secrets_store:{target.script}"
    if target.dispatch_namespace:
        return f"{target.dispatch_namespace}/{target.script}"
    return target.script


def _bounded(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else OTHER


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Metrics:
    """syncd's metrics. Thread-safe: clients observe from worker threads while a cycle is recorded."""

    def __init__(self, registry: CollectorRegistry | None = None, *, version: str = syncd.__version__) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

        self.build_info = Gauge("syncd_build_info", "syncd build; always 1", ["version", "python"], registry=r)
        self.build_info.labels(version=version, python=platform.python_version()).set(1)
        self.ready = Gauge("syncd_ready", "1 when syncd is ready (Vault auth valid, a cycle completed)", registry=r)

        self.cycle_duration = Histogram(
            "syncd_cycle_duration_seconds", "Duration of reconciliation cycles", buckets=CYCLE_BUCKETS, registry=r
        )
        self.cycles = Counter(
            "syncd_cycles", "Reconciliation cycles by trigger and outcome", ["trigger", "outcome"], registry=r
        )
        self.last_cycle = Gauge(
            "syncd_last_cycle_timestamp_seconds", "When the last cycle finished (any outcome)", registry=r
        )
        self.last_successful_cycle = Gauge(
            "syncd_last_successful_cycle_timestamp_seconds",
            "When the last cycle finished with every mapping in sync",
            registry=r,
        )

        self.vault_requests = Counter(
            "syncd_vault_requests", "Vault HTTP attempts", ["operation", "outcome"], registry=r
        )
        self.vault_duration = Histogram(
            "syncd_vault_request_duration_seconds",
            "Vault HTTP attempt duration",
            ["operation"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.cloudflare_requests = Counter(
            "syncd_cloudflare_requests", "Cloudflare API attempts", ["operation", "outcome", "code"], registry=r
        )
        self.cloudflare_duration = Histogram(
            "syncd_cloudflare_request_duration_seconds",
            "Cloudflare API attempt duration",
            ["operation"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )

        self._lock = threading.Lock()
        self._per_mapping = MappingSeries(self._lock)  # plain values, exposed at scrape time
        r.register(self._per_mapping)
        self.propagation_delay = Histogram(
            "syncd_propagation_delay_seconds",
            "From a Vault version's creation to Cloudflare's confirmation of the write",
            buckets=PROPAGATION_BUCKETS,
            registry=r,
        )
        self.vault_token_expiry = Gauge(
            "syncd_vault_token_expiry_timestamp_seconds",
            "When syncd's Vault token expires (NaN: none/unknown)",
            registry=r,
        )
        self.vault_token_expiry.set(math.nan)
        self.rate_budget = Gauge(
            "syncd_cloudflare_rate_budget_remaining",
            "Cloudflare requests syncd may still send in the window",
            registry=r,
        )
        self.rate_budget.set(math.nan)
        self.vault_notifications = Counter(
            "syncd_vault_notifications",
            "Vault writes a notification source delivered to syncd, after coalescing repeats of a path"
            " (mapped or not: each delivery is one write noticed, not one cycle)",
            ["source"],
            registry=r,
        )
        self.vault_notification_connections = Gauge(
            "syncd_vault_notification_connections",
            "Open connections of a configured Vault notification source (audit: connections from Vault's"
            " socket audit device; events: event WebSockets to Vault); 0 means polling only",
            ["source"],
            registry=r,
        )
        self.sync_mode = Gauge(
            "syncd_sync_mode",
            "1 for the sweep mode in force, 0 for the other: interval (every secret every"
            " sync.interval_seconds) or backstop (a notification source is connected; the sweep spreads"
            " over sync.backstop_interval_seconds)",
            ["mode"],
            registry=r,
        )
        self.set_sync_mode("interval")

        self.script_backoff = Gauge(
            "syncd_script_backoff",
            "1 while writes to the script are suspended after repeated timeouts or 5xx answers"
            " (series removed once it recovers)",
            ["account", "script"],
            registry=r,
        )
        self.script_backoff_seconds = Gauge(
            "syncd_script_backoff_seconds",
            "The script's current backoff before jitter (doubles per failed retry, capped)",
            ["account", "script"],
            registry=r,
        )

        self._backed_off: set[tuple[str, str]] = set()
        self._configured: frozenset[str] | None = None  # None: not configured yet, every mapping accepted
        self._script_of: dict[str, str] = {}
        self._notification_sources: frozenset[str] = frozenset()

    # --- RequestObserver ------------------------------------------------------------------------

    def observe(self, service: str, operation: str, outcome: str, code: str, seconds: float) -> None:
        """One HTTP attempt by a client. Never raises: a metrics bug must not fail a request."""
        try:
            op = operation if _OPERATION.fullmatch(operation) else OTHER
            result = _bounded(outcome, _REQUEST_OUTCOMES)
            duration = max(0.0, seconds)
            if service == "vault":
                self.vault_requests.labels(operation=op, outcome=result).inc()
                self.vault_duration.labels(operation=op).observe(duration)
            elif service == "cloudflare":
                status = code if _CODE.fullmatch(code) else OTHER
                self.cloudflare_requests.labels(operation=op, outcome=result, code=status).inc()
                self.cloudflare_duration.labels(operation=op).observe(duration)
        except Exception:  # pragma: no cover - defensive: observers must not raise
            log.debug("metrics_observe_failed", service=service, exc_info=True)

    # --- gauges the service sets ------------------------------------------------------------------

    def set_ready(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)

    def set_vault_token_expiry(self, epoch_seconds: float | None) -> None:
        self.vault_token_expiry.set(math.nan if epoch_seconds is None else epoch_seconds)

    def set_rate_budget(self, remaining: float) -> None:
        self.rate_budget.set(remaining)

    def set_script_backoff(self, scripts: Iterable[ScriptHealth]) -> None:
        """The scripts in backoff now (the reconciler's ``script_health()``); the others' series go."""
        wanted = {(h.target.account_id, script_label(h.target)): h for h in scripts}
        with self._lock:
            for labels in self._backed_off - wanted.keys():
                for gauge in (self.script_backoff, self.script_backoff_seconds):
                    with contextlib.suppress(KeyError):
                        gauge.remove(*labels)
            for (account, script), health in wanted.items():
                self.script_backoff.labels(account=account, script=script).set(1)
                self.script_backoff_seconds.labels(account=account, script=script).set(health.backoff_seconds)
            self._backed_off = set(wanted)

    # --- Vault notification sources -------------------------------------------------------------

    def configure_notification_sources(self, sources: Iterable[str]) -> None:
        """Export the connection gauge (at 0) for these sources only; drop the others' series."""
        wanted = {source for source in sources if source in NOTIFICATION_SOURCES}
        with self._lock:
            for source in NOTIFICATION_SOURCES - wanted:
                with contextlib.suppress(KeyError):
                    self.vault_notification_connections.remove(source)
            for source in sorted(wanted - self._notification_sources):
                self.vault_notification_connections.labels(source=source).set(0)
                self.vault_notifications.labels(source=source)  # exported at 0 from the start
            self._notification_sources = frozenset(wanted)

    def set_notification_connections(self, source: str, count: int) -> None:
        """How many connections ``source`` has open now; ignored for a source not configured."""
        with self._lock:
            if source in self._notification_sources:
                self.vault_notification_connections.labels(source=source).set(max(0, count))

    def count_notification(self, source: str) -> None:
        """One write ``source`` delivered (after debouncing)."""
        self.vault_notifications.labels(source=_bounded(source, NOTIFICATION_SOURCES)).inc()

    def set_sync_mode(self, mode: str) -> None:
        """The sweep mode in force ("interval" or "backstop"; see syncd.app.service.sweep)."""
        for each in ("interval", "backstop"):
            self.sync_mode.labels(mode=each).set(1 if each == mode else 0)

    # --- label bounds -----------------------------------------------------------------------------

    def configure_mappings(self, names: Iterable[str]) -> None:
        """Accept only these mapping names from now on and drop every series of any other mapping."""
        with self._lock:
            configured = self._configured = frozenset(names)
            self._per_mapping.keep_only(configured)
            for mapping in [m for m in self._script_of if m not in configured]:
                del self._script_of[mapping]

    def _accepts(self, mapping: str) -> bool:
        return self._configured is None or mapping in self._configured

    def _note_script(self, mapping: str, script: str) -> None:
        """A mapping moved to another script: its series with the old script label go."""
        previous = self._script_of.get(mapping)
        if previous != script:
            if previous is not None:
                self._per_mapping.drop_script(mapping, previous)
            self._script_of[mapping] = script

    # --- drift ------------------------------------------------------------------------------------

    def count_drift(self, mapping: str, *, corrected: bool) -> None:
        """One drift found (``corrected=False``) or one correction confirmed, for a configured mapping."""
        with self._lock:
            if not self._accepts(mapping):
                return
            series = self._per_mapping
            (series.drift_corrected if corrected else series.drift_detected).inc(mapping, time.time())

    # --- cycles -----------------------------------------------------------------------------------

    def record_cycle(self, report: CycleReport) -> None:
        """Account for one finished cycle. Dry runs (``plan``) change nothing and are not recorded."""
        if report.dry_run:
            return
        outcome = "timeout" if report.timed_out else ("ok" if report.ok else "failed")
        self.cycles.labels(trigger=_bounded(report.trigger, _TRIGGERS), outcome=outcome).inc()
        self.cycle_duration.observe(max(0.0, report.finished_at - report.started_at))
        self.last_cycle.set(report.finished_at)
        if outcome == "ok":
            self.last_successful_cycle.set(report.finished_at)
        now = time.time()  # the creation time of the counters this cycle brings
        with self._lock:
            for result in report.results:
                if self._accepts(result.mapping):
                    self._record_result(report, result, now)
            for push in report.pushes:
                self._record_push(report, push, now)

    def _record_result(self, report: CycleReport, result: MappingResult, now: float) -> None:
        mapping, error_code = result.mapping, result.error_code
        self._note_script(mapping, script_label(result.target))
        series = self._per_mapping
        healthy = result.in_sync and error_code is None
        series.in_sync.set(mapping, _ONE if healthy else _ZERO)
        if healthy:
            series.last_success.set(mapping, report.finished_at)
        series.drift_detected.touch(mapping, now)  # from 0, so increase() sees the first
        series.drift_corrected.touch(mapping, now)
        staged = result.staged_version is not None
        series.staged.set(mapping, _ONE if staged else _ZERO)
        if error_code is not None and not staged:
            series.failures.inc((mapping, failure_reason(error_code)), now)

    def _record_push(self, report: CycleReport, push: PushRecord, now: float) -> None:
        script = script_label(push.target)
        outcome = _bounded(push.outcome, _PUSH_OUTCOMES)
        series = self._per_mapping
        mappings = [m for m in push.mappings if self._accepts(m)]
        for mapping in mappings:
            series.pushes.inc((mapping, script, outcome), now)
        if push.outcome != "ok":
            return
        written, reasons = _written_per_mapping(report, push)
        for mapping, count in written.items():
            if self._accepts(mapping):
                series.bindings_written.inc((mapping, script), now, count)
        if push.confirmed_at is None:
            return
        for mapping, created in push.vault_created.items():
            if self._accepts(mapping) and _is_rotation(reasons.get(mapping)):
                self.propagation_delay.observe(max(0.0, push.confirmed_at - _epoch(created)))

    # --- exposition -------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The exposition, as ``generate_latest(self.registry)`` writes it, and its content type."""
        chunks, content_type = self.render_chunks()
        return b"".join(chunks), content_type

    def render_chunks(self) -> tuple[list[bytes], str]:
        """The same exposition in chunks of a few hundred lines (see :mod:`syncd.app.service.exposition`)."""
        return list(self.exposition()), CONTENT_TYPE_LATEST

    def exposition(self) -> Iterator[bytes]:
        """The exposition's chunks, made one at a time as they are consumed."""
        return exposition_chunks(self.registry)


def _written_per_mapping(report: CycleReport, push: PushRecord) -> tuple[Tally[str], dict[str, set[Reason]]]:
    """Per mapping: how many bindings the push wrote, and the reasons of those writes.

    Looked up in the report's index of planned writes, so a push costs O(its bindings), and a
    cycle's metrics O(mappings + changes), however many pushes there are.
    """
    index = report.writes_by_binding
    tally: Tally[str] = Tally()
    reasons: dict[str, set[Reason]] = {}
    only = push.mappings[0] if len(push.mappings) == 1 else None
    for binding in push.written:
        change = index.get((push.target, binding))
        mapping = change.mapping if change is not None else only
        if mapping is not None:
            tally[mapping] += 1
        if change is not None:
            reasons.setdefault(change.mapping, set()).add(change.reason)
    return tally, reasons


def _is_rotation(reasons: set[Reason] | None) -> bool:
    """Whether a push carried a new Vault version (rather than a first or config-driven write).

    A first push after deployment writes a version created long ago; counting it as propagation
    delay would fire the propagation alert on every fresh install. When the report itemizes no
    changes for the mapping, the engine's ``vault_created`` is taken at its word.
    """
    return not reasons or Reason.CHANGED in reasons
