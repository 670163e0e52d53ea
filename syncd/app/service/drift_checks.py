"""Drift checks in the service: which scripts, when, within which share of the rate budget, and what
to do with a finding (the decision itself is ``syncd.engine.drift.assess``).

- **Which**: every script on which syncd owns a binding (from the state), plus scripts with a
  staged mapping (``staged_version`` set), which are watched until the staged version is deployed;
  and every Secrets Store holding a secret syncd owns (``store_drift``: one listing per check).
- **When**: each script once per ``sync.drift_check_interval_seconds``, spread over the interval (a
  script's first check is offset by its position in the list). ``run_due()`` is the scheduler job's
  body; ``check_now()`` checks at once (a forced check; tests, the demo).
- **Budget**: every check is charged its requests (one versions list in the steady state; a version
  read when the list lacks bindings; the deployment when a mapping is staged). Within any pacer
  window, drift checks use at most ``floor(drift_budget_share * pacer.budget)`` requests, and none
  starts while the pacer has no more than ``(1 - share) * budget`` left (rotations come first).
  A check that does not fit is deferred to the next tick. The requests go through the same pacer.
- **Correction** (``drift = "correct"``): the drifted owned bindings become a ``DriftCorrection``
  (which script, which bindings, why), kept here until a cycle confirmed their write, and a cycle
  of their mappings is requested; the service passes ``corrections()`` to every reconcile, which
  re-reads those mappings from Vault and writes the bindings again: one Cloudflare call per drifted
  script, through the normal write path. Nothing is planted in the state. ``report`` only logs and
  counts.
- **Own writes**: ``note_cycle`` counts syncd's confirmed write calls per script (each made one
  version) and confirms corrections (``syncd_drift_corrected_total``, a log line with the delay).

Log lines name the script, the version, when it was made, the author and source Cloudflare reports,
and the binding names; never a value.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

import structlog

from syncd.app.service.drift_knowledge import Seen, all_knowledge, knowledge_now
from syncd.app.service.store_drift import StoreDriftCheck
from syncd.config import Settings
from syncd.engine.drift import DriftCorrection, DriftFinding, ScriptKnowledge, assess
from syncd.engine.ports import WorkerVersions
from syncd.engine.report import CycleReport
from syncd.engine.state import StateBackend
from syncd.errors import SyncdError
from syncd.model import DestinationKind, Target

log = structlog.get_logger("syncd.drift")

CHARGE_PER_CHECK = 3  # the most one check asks for before knowing: list, version, deployment


class RateBudget(Protocol):
    """The pacer, as the checker sees it (``syncd.clients.pacer.Pacer``)."""

    budget: int
    window: float
    clock: Callable[[], float]

    def remaining(self) -> int: ...


class DriftMetrics(Protocol):
    def count_drift(self, mapping: str, *, corrected: bool) -> None: ...


class DriftChecker:
    def __init__(
        self,
        settings: Settings,
        versions: WorkerVersions,
        state: StateBackend,
        pacer: RateBudget,
        *,
        request_cycle: Callable[[set[str]], object],
        metrics: DriftMetrics | None = None,
        clock: Callable[[], float],
        store: StoreDriftCheck | None = None,
    ) -> None:
        """``request_cycle(mappings)`` queues a reconcile of those mappings (``Service._queue``);
        ``clock``: epoch seconds (records' ``pushed_at`` and statuses are on it); ``store``: the
        Secrets Store check (its stores are checked with the scripts, in the same budget share)."""
        self._store = store
        self._settings = settings
        self._versions = versions
        self._state = state
        self._pacer = pacer
        self.request_cycle = request_cycle  # set by wiring once the service exists
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[Target, Seen] = {}
        self._spent: deque[tuple[float, int]] = deque()  # (pacer time, requests) of drift checks
        self._corrections: dict[str, float] = {}  # mapping -> when its drift was found
        self._pending: dict[Target, DriftCorrection] = {}  # bindings to write again, until confirmed

    def update_settings(self, settings: Settings) -> None:
        self._settings = settings

    def corrections(self) -> tuple[DriftCorrection, ...]:
        """The corrections no cycle has confirmed yet: the input of the next reconcile."""
        with self._lock:
            return tuple(self._pending[target] for target in sorted(self._pending))

    # -- the budget ---------------------------------------------------------------------------

    def allowance(self) -> int:
        """Requests drift checks may make per pacer window."""
        return max(1, math.floor(self._settings.sync.drift_budget_share * self._pacer.budget))

    def spent(self) -> int:
        """Requests drift checks made in the current pacer window."""
        horizon = self._pacer.clock() - self._pacer.window
        while self._spent and self._spent[0][0] <= horizon:
            self._spent.popleft()
        return sum(n for _, n in self._spent)

    def _fits(self) -> bool:
        share = self._settings.sync.drift_budget_share
        if self.spent() + CHARGE_PER_CHECK > self.allowance():
            return False
        return self._pacer.remaining() > (1 - share) * self._pacer.budget

    # -- what to check ----------------------------------------------------------------------

    def run_due(self, exclusive: Callable[[], AbstractContextManager[bool]] | None = None) -> int:
        """The scheduler job: check the scripts that are due, as the budget allows. Returns how many.

        ``exclusive`` (the service's): entered around each check (before this checker's lock, the
        order a cycle takes them in), yields False while a cycle keeps running, which defers the
        remaining checks: a version syncd is writing, or has written but not yet counted
        (``note_cycle`` runs at the end of the cycle), must never be judged foreign. So each check
        reads its script's state once it is alone: the list read first only says what is due."""
        with self._lock:
            knowledge = all_knowledge(self._state, self._settings, self._seen)
            now = self._clock()
            interval = self._settings.sync.drift_check_interval_seconds
            for index, target in enumerate(knowledge):
                seen = self._seen.setdefault(target, Seen())
                if seen.due is None:
                    seen.due = now + interval * index / max(1, len(knowledge))
            due = sorted((d, t) for t in knowledge if (d := self._seen[t].due) is not None and d <= now)
            mappings_of: dict[Target, list[str]] = {}
            if due:
                for mapping in self._settings.mappings:
                    mappings_of.setdefault(self._settings.target_of(mapping), []).append(mapping.name)
        checked = 0
        for _, target in due:
            with exclusive() if exclusive is not None else nullcontext(True) as alone:
                if not alone:
                    break
                with self._lock:
                    if not self._fits():
                        break
                    # Read again: a cycle may have ended while this check waited for it.
                    self._check(knowledge_now(self._state, target, mappings_of.get(target, ()), self._seen))
                    self._seen[target].due = now + interval
            checked += 1
        return checked

    def check_now(self, targets: Iterable[Target] | None = None) -> list[DriftFinding]:
        """Check these scripts (all known ones when None) at once, as the budget allows."""
        findings = []
        with self._lock:
            knowledge = all_knowledge(self._state, self._settings, self._seen)
            for target in knowledge if targets is None else targets:
                if target not in knowledge or not self._fits():
                    continue
                finding = self._check(knowledge[target])
                if finding is not None:
                    findings.append(finding)
        return findings

    # -- one script ---------------------------------------------------------------------------

    def _charge(self, requests: int) -> None:
        self._spent.append((self._pacer.clock(), requests))

    def _check(self, knowledge: ScriptKnowledge) -> DriftFinding | None:
        target = knowledge.target
        if target.kind is DestinationKind.SECRETS_STORE:
            return self._check_store(target)
        requests = 0
        try:
            versions = self._versions.list_versions(target, newer_than=knowledge.list_from())
            requests += 1 + len(versions) // 10
            latest_names = None
            if versions and (knowledge.last_seen is None or versions[0].number > knowledge.last_seen):
                latest_names = versions[0].secret_names
                if latest_names is None:
                    requests += 1
                    latest_names = self._versions.version(target, versions[0].id).secret_names
            deployment = None
            if knowledge.staged:
                requests += 1
                deployment = self._versions.current_deployment(target)
        except SyncdError as exc:
            self._charge(max(1, requests))
            log.warning("drift.check_failed", script=target.script, account=target.account_id, error_code=exc.reason)
            return None
        self._charge(requests)
        finding = assess(knowledge, versions, latest_names, deployment)
        seen = self._seen.setdefault(target, Seen())
        seen.last_seen, seen.own_writes = finding.newest, 0
        if finding.deployed_staged:
            self._clear_staged(finding)
        if finding.drifted and self._settings.sync.drift != "off":
            self._handle(finding)
        return finding

    def _check_store(self, target: Target) -> DriftFinding | None:
        """One listing of the store, its owned secrets' ``modified`` against syncd's own writes."""
        if self._store is None:
            return None
        records = [r for r in self._state.bindings(target=target) if r.owned and not r.pending]
        try:
            finding, requests = self._store.check(target, records)
        except SyncdError as exc:
            self._charge(1)
            log.warning("drift.check_failed", script=target.script, account=target.account_id, error_code=exc.reason)
            return None
        self._charge(requests)
        if finding.drifted and self._settings.sync.drift != "off":
            self._handle(finding)
        return finding

    def _clear_staged(self, finding: DriftFinding) -> None:
        for mapping in sorted(finding.deployed_staged):
            status = self._state.mapping_status(mapping)
            if status is None:
                continue
            self._state.record_mapping_result(
                mapping,
                at=self._clock(),
                config_fingerprint=status.config_fingerprint,
                version=status.last_version,
                in_sync=True,
                pushed=False,
                error_code=None,
                error=None,
            )
            log.info("staged.deployed", mapping=mapping, script=finding.target.script, staged=status.staged_version)

    def _handle(self, finding: DriftFinding) -> None:
        target = finding.target
        records = [r for r in self._state.bindings(target=target) if r.owned and not r.pending]
        # A script's foreign version may have changed any of its secrets: all owned ones go again.
        names = (finding.missing | finding.changed) or frozenset(r.name for r in records)
        drifted = [r for r in records if r.name in names]
        mappings = sorted({r.mapping for r in drifted})
        culprit = finding.culprit
        mode = self._settings.sync.drift
        log.warning(
            "drift.detected",
            kind=finding.kind,
            script=target.script,
            account=target.account_id,
            namespace=target.dispatch_namespace,
            bindings=sorted(names),
            mappings=mappings,
            version=None if culprit is None else culprit.number,
            changed_at=None if culprit is None else culprit.created_on,
            author=None if culprit is None else culprit.author_email,
            source=None if culprit is None else culprit.source,
            action="re-push" if mode == "correct" else "report only",
        )
        for mapping in mappings:
            if self._metrics is not None:
                self._metrics.count_drift(mapping, corrected=False)
        if mode != "correct" or not drifted:
            return
        now = self._clock()
        what = "missing" if finding.kind == "missing" else "changed by someone else"
        earlier = self._pending.get(target)
        self._pending[target] = DriftCorrection(
            target,
            frozenset(r.name for r in drifted) | (earlier.names if earlier else frozenset()),
            what,
            earlier.found_at if earlier else now,
        )
        for mapping in mappings:
            self._corrections.setdefault(mapping, now)
        self.request_cycle(set(mappings))

    # -- after each cycle ---------------------------------------------------------------------

    def _confirm(self, target: Target, written: Iterable[str]) -> None:
        pending = self._pending.get(target)
        if pending is None:
            return
        left = pending.names - set(written)
        if left:
            self._pending[target] = dataclasses.replace(pending, names=left)
        else:
            del self._pending[target]

    def note_cycle(self, report: CycleReport) -> None:
        """Count syncd's own confirmed writes per script; confirm pending corrections."""
        if report.dry_run:
            return
        with self._lock:
            for push in report.pushes:
                if push.outcome == "ok":
                    self._seen.setdefault(push.target, Seen()).own_writes += 1
                    self._confirm(push.target, push.written)
            pushed = {m for push in report.pushes if push.outcome == "ok" for m in push.mappings}
            now = self._clock()
            for result in report.results:
                found_at = self._corrections.get(result.mapping)
                if found_at is None or result.failed or result.mapping not in pushed:
                    continue
                del self._corrections[result.mapping]
                if self._metrics is not None:
                    self._metrics.count_drift(result.mapping, corrected=True)
                log.info(
                    "drift.corrected",
                    mapping=result.mapping,
                    script=result.target.script,
                    delay_s=round(max(0.0, now - found_at), 3),
                )
