"""One reconciliation: Vault versions -> desired bindings -> plan -> Cloudflare -> state.

The same cycle serves every trigger (interval, notification, manual, start-up, ``syncd plan``):

1. group the configured mappings by distinct Vault secret; learn each mount's KV version once;
2. per secret, in a bounded thread pool: one metadata read (KV v2). The data is read only if some
   mapping of it has no status yet, a changed configuration, a recorded version other than the
   current one, an unresolved failure, or is KV v1 (no versions). Otherwise the secret costs that
   one call and no Cloudflare call, also after a restart, since the state persists (invariant 3);
3. desired bindings per mapping; the Worker's secret names where ownership must be decided;
4. one plan across all mappings, grouped by target script (one call per script, invariant 4);
5. apply (skipped for ``dry_run``): up to ``cloudflare.write_concurrency`` scripts at once, one
   writer per script, skipping scripts in backoff; then record every touched mapping's result.

The whole cycle runs in a ``deadline_scope`` (``syncd.deadlines``): every Vault and Cloudflare call,
its retries and waits are bounded by the time the cycle has left. The ``ScriptGate`` (one write in
flight per script) and the ``ScriptBackoff`` (failing scripts left alone for a while) belong to the
reconciler, so they span cycles; ``script_health()`` shows the backoff to ``/status`` and metrics.

Staging (``on_undeployed = "stage"``, see ``applier``): a mapping whose changes went into an
undeployed version reports ``Staged`` with ``staged_version = N`` ("staged in version N, not deployed")
and is not in sync;
that status is carried from cycle to cycle (its bindings are recorded as written, so no change is
planned) until the drift checker sees the version deployed (``clear_staged``) or a later write of
the mapping succeeds normally.

Every error of one mapping, secret or target is caught and reported in that mapping's result only
(invariant 6); error texts carry paths, names and codes, never values.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import hmac
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import structlog

from syncd.config import MappingSettings, Settings, mapping_fingerprint
from syncd.deadlines import deadline_scope
from syncd.engine.admission import admit_new_names, prepare_bodies
from syncd.engine.applier import Applier, ApplyResult, log_internal_for_target
from syncd.engine.backoff import ScriptBackoff, ScriptHealth
from syncd.engine.cycle_results import mapping_results
from syncd.engine.cycle_work import CycleWork, MappingWork
from syncd.engine.destinations import Destinations, WorkerScriptAdapter
from syncd.engine.drift import DriftCorrection
from syncd.engine.fingerprint import Fingerprinter
from syncd.engine.planner import Plan, Policy, plan, targets_needing_names
from syncd.engine.ports import DestinationAdapter, SecretSource, WorkerSecrets, WorkerVersions
from syncd.engine.report import CycleReport, MappingResult, Trigger
from syncd.engine.script_gate import ScriptGate
from syncd.engine.source_checks import SourceChecks
from syncd.engine.state import BindingRecord, MappingOutcome, StateBackend
from syncd.errors import CycleTimeout, SyncdError
from syncd.model import DestinationKind, Target

log = structlog.get_logger("syncd.engine")


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        source: SecretSource,
        workers: WorkerSecrets,
        state: StateBackend,
        *,
        clock: Callable[[], float] = time.time,
        concurrency: int | None = None,
        fingerprint_key: bytes | None = None,
        write_concurrency: int | None = None,
        versions: WorkerVersions | None = None,
        destinations: Mapping[DestinationKind, DestinationAdapter] | None = None,
    ) -> None:
        """``fingerprint_key``: an external key for the value fingerprints (``sync.fingerprint_key``);
        None keys them with the state store's own. A different key makes every recorded fingerprint
        differ, hence one rewrite of every binding on the next cycle. ``write_concurrency``: None
        takes ``cloudflare.write_concurrency`` of the settings of each cycle. ``workers`` and ``versions``
        make the Worker script adapter; ``destinations`` adds the adapters of other kinds."""
        self._settings = settings
        self._source = source
        self._workers = workers
        self._state = state
        self._clock = clock
        self._concurrency = concurrency
        self._write_concurrency = write_concurrency
        self._versions = versions
        self._destinations = dict(destinations or {})
        self._lister = Destinations(
            {DestinationKind.WORKER_SCRIPT: WorkerScriptAdapter(workers, versions), **self._destinations}
        )
        self._gate = ScriptGate()
        cloudflare = settings.cloudflare
        self._backoff = ScriptBackoff(
            cloudflare.script_backoff_seconds, cloudflare.script_backoff_max_seconds, clock=clock
        )
        self._fingerprinter = Fingerprinter(state.hmac_key if fingerprint_key is None else fingerprint_key)
        # Names the external key in the mappings' config fingerprints (so a new key re-reads Vault);
        # an HMAC under the key itself, which says nothing about it.
        self._fingerprint_key_id = (
            None
            if fingerprint_key is None
            else hmac.new(fingerprint_key, b"syncd/fingerprint-key-id", hashlib.sha256).hexdigest()[:32]
        )
        self._sources = SourceChecks(
            source, concurrency=concurrency, past_deadline=self._past_deadline, clock=clock
        )
        self._lock = threading.Lock()
        self._config_fingerprints: tuple[Settings, dict[str, str]] | None = None

    def update_settings(self, settings: Settings) -> None:
        """Takes effect at the next cycle (a running one keeps the settings it started with)."""
        self._settings = settings

    def script_health(self) -> list[ScriptHealth]:
        """The scripts in backoff now (healthy ones are absent). Safe to call during a cycle."""
        return self._backoff.snapshot()

    def reconcile(
        self,
        *,
        trigger: Trigger = Trigger.INTERVAL,
        only_mappings: Collection[str] | None = None,
        deadline: float | None = None,
        dry_run: bool = False,
        corrections: Collection[DriftCorrection] = (),
    ) -> CycleReport:
        """``corrections``: bindings someone else changed or removed (drift) to write again; their
        mappings are re-read from Vault (only those in ``only_mappings`` when it is given)."""
        cycle_id = uuid.uuid4().hex[:12]
        with self._lock, structlog.contextvars.bound_contextvars(cycle_id=cycle_id, trigger=trigger):
            settings = self._settings
            started_at = self._clock()
            with deadline_scope(None if deadline is None else deadline - started_at):
                cycle = self._start(settings, only_mappings, deadline, dry_run)
                cycle.corrections = frozenset((c.target, name) for c in corrections for name in c.names)
                self._sources.run(cycle)
                prepare_bodies(cycle, self._lister)
                remote = self._remote_names(cycle)
                admit_new_names(cycle, self._lister, remote)
                the_plan = self._plan(cycle, remote, full=only_mappings is None)
                applied = ApplyResult()
                if not dry_run:
                    applied = self._applier(settings).apply(the_plan, vault_created=_created(cycle), deadline=deadline)
            results = mapping_results(cycle, the_plan, applied)
            if not dry_run:
                self._record(cycle, results, applied)
            report = CycleReport(
                cycle_id=cycle_id,
                trigger=trigger,
                started_at=started_at,
                finished_at=self._clock(),
                results=tuple(results),
                pushes=tuple(applied.pushes),
                dry_run=dry_run,
                timed_out=cycle.timed_out or applied.timed_out,
                next_checks=_next_checks(cycle),
            )
            log.debug(
                "cycle",
                mappings=len(results),
                failed=sum(r.failed for r in results),
                pushes=len(report.pushes),
                dry_run=dry_run,
                timed_out=report.timed_out,
            )
            return report

    def _applier(self, settings: Settings) -> Applier:
        cloudflare = settings.cloudflare
        self._backoff.configure(cloudflare.script_backoff_seconds, cloudflare.script_backoff_max_seconds)
        self._backoff.retain(settings.target_of(m) for m in settings.mappings)
        return Applier(
            self._workers,
            self._state,
            write_mode=cloudflare.write_mode,
            clock=self._clock,
            concurrency=self._write_concurrency or cloudflare.write_concurrency,
            gate=self._gate,
            backoff=self._backoff,
            versions=self._versions,
            destinations=self._destinations,
            stage_mappings=frozenset(
                m.name for m in settings.mappings if (m.on_undeployed or settings.sync.on_undeployed) == "stage"
            ),
        )

    # --- 1. what this cycle looks at --------------------------------------------------------------

    def _start(
        self, settings: Settings, only: Collection[str] | None, deadline: float | None, dry_run: bool
    ) -> CycleWork:
        records = self._state.bindings()
        by_mapping: dict[str, list[BindingRecord]] = defaultdict(list)
        for record in records:
            by_mapping[record.mapping].append(record)
        chosen = [m for m in settings.mappings if only is None or m.name in only]
        statuses = {status.mapping: status for status in self._state.all_mapping_status()}
        works = []
        for mapping in chosen:
            target = settings.target_of(mapping)
            works.append(
                MappingWork(
                    mapping=mapping,
                    target=target,
                    config_fingerprint=self._config_fingerprint(settings, mapping, target),
                    status=statuses.get(mapping.name),
                    records=by_mapping.get(mapping.name, []),
                )
            )
        cycle = CycleWork(settings, Policy.of(settings.sync), self._fingerprinter, deadline, dry_run, works, records)
        if only is None:
            configured = {m.name for m in settings.mappings}
            cycle.removed = sorted(self._state.mapping_names() - configured)
        return cycle

    def _config_fingerprint(self, settings: Settings, mapping: MappingSettings, target: Target) -> str:
        """Computed once per settings object (a reload brings a new one), not once per cycle."""
        if self._config_fingerprints is None or self._config_fingerprints[0] is not settings:
            self._config_fingerprints = (settings, {})
        cache = self._config_fingerprints[1]
        if mapping.name not in cache:
            cache[mapping.name] = mapping_fingerprint(mapping, target, fingerprint_key_id=self._fingerprint_key_id)
        return cache[mapping.name]

    def _past_deadline(self, cycle: CycleWork) -> bool:
        if cycle.deadline is not None and self._clock() >= cycle.deadline:
            cycle.timed_out = True
            return True
        return False

    # --- 3. ownership and the plan ----------------------------------------------------------------

    def _remote_names(self, cycle: CycleWork) -> dict[Target, set[str]]:
        """The secret names of every target where ownership must be decided, listed in parallel
        (``write_concurrency`` at a time, through the shared pacer). A target in backoff is not
        listed: nothing would be written to it anyway."""
        desires = [w.desire for w in cycle.works if w.desire is not None]
        targets = sorted(targets_needing_names(desires, cycle.records))
        if not targets:
            return {}
        writing: dict[Target, list[MappingWork]] = defaultdict(list)
        for work in cycle.works:
            if work.desire is not None:
                for target in {b.target for b in work.desire.bindings}:
                    writing[target].append(work)
        size = min(self._write_concurrency or cycle.settings.cloudflare.write_concurrency, len(targets))
        with ThreadPoolExecutor(max_workers=size, thread_name_prefix="syncd-lister") as pool:
            futures = [
                pool.submit(functools.partial(contextvars.copy_context().run, self._list_names, cycle, target))
                for target in targets
            ]
            listed = [future.result() for future in futures]
        names: dict[Target, set[str]] = {}
        for target, outcome in zip(targets, listed, strict=True):
            if isinstance(outcome, set):
                names[target] = outcome
            elif isinstance(outcome, SyncdError):
                for work in writing[target]:
                    work.fail(outcome)
            else:  # a bug in the client fails this target only (invariant 6)
                log_internal_for_target(outcome, [w.name for w in writing[target]], target)
                for work in writing[target]:
                    work.fail_internal(outcome)
        return names

    def _list_names(self, cycle: CycleWork, target: Target) -> set[str] | Exception:
        blocked = self._backoff.blocked(target)
        if blocked is not None:
            return blocked
        if self._past_deadline(cycle):
            return CycleTimeout(f"cycle deadline passed before listing the secrets of {target}")
        try:
            return self._lister.of(target).names(target)
        except Exception as exc:  # SyncdError: reported per mapping; anything else: a bug, see above
            return exc

    def _plan(self, cycle: CycleWork, remote: dict[Target, set[str]], *, full: bool) -> Plan:
        desires = [w.desire for w in cycle.works if w.desire is not None]
        claimed = {
            (cycle.settings.target_of(m), name): m.name
            for m in cycle.settings.mappings
            for name in m.static_binding_names()
        }
        return plan(
            desires,
            cycle.records,
            cycle.fingerprinter,
            cycle.policy,
            remote_names=remote,
            removed_mappings=cycle.removed if full else (),
            claimed=claimed,
            corrections=cycle.corrections,
        )

    def _record(self, cycle: CycleWork, results: Sequence[MappingResult], applied: ApplyResult) -> None:
        at = self._clock()
        configured = {w.name: w for w in cycle.works}
        failed = {r.mapping for r in results if r.failed}
        outcomes = [
            MappingOutcome(
                result.mapping,
                at,
                None if work is None else work.config_fingerprint,
                result.vault_version,
                result.in_sync,
                result.mapping in applied.pushed,
                result.error_code,
                result.error,
                result.staged_version,
                result.source_versions,
            )
            for result in results
            # a removed mapping that was pruned has no status left (below)
            if (work := configured.get(result.mapping)) is not None or result.failed
        ]
        try:
            self._state.record_mapping_results(outcomes)
        except SyncdError as exc:
            log.error("state.record_failed", mappings=len(outcomes), error_code=exc.reason, error=str(exc))
        for name in cycle.removed:
            if name not in failed:
                try:
                    self._state.remove_mapping_status(name)
                except SyncdError as exc:
                    log.error("state.record_failed", mapping=name, error_code=exc.reason, error=str(exc))


def _next_checks(cycle: CycleWork) -> dict[str, float]:
    """Per mapping with a database static role: when Vault rotates (one of) its role(s) next."""
    if not cycle.next_rotations:
        return {}
    checks = {}
    for work in cycle.works:
        times = [cycle.next_rotations[s.ref] for s in work.mapping.sources if s.ref in cycle.next_rotations]
        if times:
            checks[work.name] = min(times)
    return checks


def _created(cycle: CycleWork) -> dict[str, datetime]:
    return {w.name: w.created for w in cycle.works if w.created is not None}
