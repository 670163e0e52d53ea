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
undeployed version reports ``Staged(N)`` ("staged in version N, not deployed") and is not in sync;
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
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from syncd.config import MappingSettings, Settings, mapping_fingerprint
from syncd.deadlines import deadline_scope
from syncd.engine.applier import Applier, ApplyResult, log_internal, log_internal_for_target
from syncd.engine.backoff import ScriptBackoff, ScriptHealth
from syncd.engine.fingerprint import Fingerprinter
from syncd.engine.planner import MappingDesire, Plan, Policy, plan, targets_needing_names
from syncd.engine.ports import SecretSource, WorkerSecrets, WorkerVersions
from syncd.engine.report import Action, CycleReport, MappingResult
from syncd.engine.script_gate import ScriptGate
from syncd.engine.state import BindingRecord, MappingOutcome, MappingStatus, StateBackend
from syncd.engine.values import bindings_for
from syncd.errors import CycleTimeout, InternalError, SyncdError, VaultSecretDeleted, VaultSecretNotFound
from syncd.model import KvVersion, SecretVersion, Target, VaultSecretRef, VersionInfo
from syncd.redaction import scrub_error

log = structlog.get_logger("syncd.engine")


@dataclass(slots=True)
class _Work:
    """One configured mapping through one cycle."""

    mapping: MappingSettings
    target: Target
    config_fingerprint: str
    status: MappingStatus | None
    records: list[BindingRecord]
    started: bool = False
    version: int | None = None
    created: datetime | None = None
    desire: MappingDesire | None = None
    error_code: str | None = None
    error: str | None = None
    gone: SyncdError | None = None  # the secret vanished and on_delete = "delete" handles it

    @property
    def name(self) -> str:
        return self.mapping.name

    def fail(self, exc: SyncdError) -> None:
        if self.error_code is None:
            self.error_code, self.error = exc.reason, scrub_error(str(exc))  # kept: state, /status, CLI
        self.desire = None

    def fail_internal(self, exc: BaseException) -> None:
        error = InternalError.of(exc)
        self.error_code, self.error = error.reason, str(error)
        self.desire = None


@dataclass
class _Cycle:
    settings: Settings
    policy: Policy
    fingerprinter: Fingerprinter
    deadline: float | None
    dry_run: bool
    works: list[_Work]
    records: list[BindingRecord]
    timed_out: bool = False
    removed: list[str] = field(default_factory=list)


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
    ) -> None:
        """``fingerprint_key``: an external key for the value fingerprints (``sync.fingerprint_key``);
        None keys them with the state store's own. A different key makes every recorded fingerprint
        differ, hence one rewrite of every binding on the next cycle. ``write_concurrency``: None
        takes ``cloudflare.write_concurrency`` of the settings of each cycle."""
        self._settings = settings
        self._source = source
        self._workers = workers
        self._state = state
        self._clock = clock
        self._concurrency = concurrency
        self._write_concurrency = write_concurrency
        self._versions = versions
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
        trigger: str = "interval",
        only_mappings: Collection[str] | None = None,
        deadline: float | None = None,
        dry_run: bool = False,
    ) -> CycleReport:
        cycle_id = uuid.uuid4().hex[:12]
        with self._lock, structlog.contextvars.bound_contextvars(cycle_id=cycle_id, trigger=trigger):
            settings = self._settings
            started_at = self._clock()
            with deadline_scope(None if deadline is None else deadline - started_at):
                cycle = self._start(settings, only_mappings, deadline, dry_run)
                self._inspect_secrets(cycle)
                remote = self._remote_names(cycle)
                the_plan = self._plan(cycle, remote, full=only_mappings is None)
                applied = ApplyResult()
                if not dry_run:
                    applied = self._applier(settings).apply(the_plan, vault_created=_created(cycle), deadline=deadline)
            results = self._results(cycle, the_plan, applied)
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
            stage_mappings=frozenset(
                m.name for m in settings.mappings if (m.on_undeployed or settings.sync.on_undeployed) == "stage"
            ),
        )

    # --- 1. what this cycle looks at --------------------------------------------------------------

    def _start(self, settings: Settings, only: Collection[str] | None, deadline: float | None, dry_run: bool) -> _Cycle:
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
                _Work(
                    mapping=mapping,
                    target=target,
                    config_fingerprint=self._config_fingerprint(settings, mapping, target),
                    status=statuses.get(mapping.name),
                    records=by_mapping.get(mapping.name, []),
                )
            )
        cycle = _Cycle(settings, Policy.of(settings.sync), self._fingerprinter, deadline, dry_run, works, records)
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

    def _past_deadline(self, cycle: _Cycle) -> bool:
        if cycle.deadline is not None and self._clock() >= cycle.deadline:
            cycle.timed_out = True
            return True
        return False

    # --- 2. Vault ---------------------------------------------------------------------------------

    def _inspect_secrets(self, cycle: _Cycle) -> None:
        groups: dict[VaultSecretRef, list[_Work]] = defaultdict(list)
        for work in cycle.works:
            groups[work.mapping.vault.ref].append(work)
        kv_versions = self._kv_versions(cycle, groups)
        jobs = [(ref, works, kv_versions[ref]) for ref, works in groups.items() if ref in kv_versions]
        if not jobs:
            return
        size = max(1, min(self._concurrency or cycle.settings.vault.concurrency, len(jobs)))
        pending = iter(jobs)
        taking = threading.Lock()

        def drain() -> None:
            # One task per worker pulling secrets until none is left: no future per secret.
            while True:
                with taking:
                    job = next(pending, None)
                if job is None:
                    return
                self._inspect_guarded(cycle, *job)

        with ThreadPoolExecutor(max_workers=size, thread_name_prefix="syncd-vault") as pool:
            # Each worker runs in a copy of this thread's context, so its log lines carry the cycle id.
            futures = [pool.submit(contextvars.copy_context().run, drain) for _ in range(size)]
            for future in futures:
                future.result()

    def _kv_versions(self, cycle: _Cycle, groups: dict[VaultSecretRef, list[_Work]]) -> dict[VaultSecretRef, KvVersion]:
        """Each secret's KV version: as a mapping states it, else the mount's (asked once per mount)."""
        by_mount: dict[str, KvVersion | SyncdError] = {}
        resolved: dict[VaultSecretRef, KvVersion] = {}
        for ref, works in groups.items():
            stated = next(
                (w.mapping.vault.stated_kv_version for w in works if w.mapping.vault.stated_kv_version is not None),
                None,
            )
            if stated is not None:
                resolved[ref] = stated
                continue
            if ref.mount not in by_mount:
                if self._past_deadline(cycle):
                    continue
                try:
                    by_mount[ref.mount] = self._source.kv_version(ref.mount)
                except SyncdError as exc:
                    by_mount[ref.mount] = exc
            found = by_mount[ref.mount]
            if isinstance(found, SyncdError):
                for work in works:
                    work.started = True
                    work.fail(found)
            else:
                resolved[ref] = found
        return resolved

    def _inspect_guarded(self, cycle: _Cycle, ref: VaultSecretRef, works: list[_Work], kv: KvVersion) -> None:
        if self._past_deadline(cycle):
            return
        for work in works:
            work.started = True
        try:
            self._inspect(cycle, ref, works, kv)
        except Exception as exc:
            log_internal(exc, [w.name for w in works], secret=str(ref))
            for work in works:
                work.fail_internal(exc)

    def _inspect(self, cycle: _Cycle, ref: VaultSecretRef, works: list[_Work], kv: KvVersion) -> None:
        try:
            info = self._source.current_version(ref, kv)
        except (VaultSecretNotFound, VaultSecretDeleted) as exc:
            self._secret_gone(cycle, works, None, exc)
            return
        except SyncdError as exc:
            for work in works:
                work.fail(exc)
            return
        for work in works:
            work.version = info.version
            work.created = info.created_time
        if info.deleted or info.destroyed:
            state = "destroyed" if info.destroyed else "deleted"
            gone = VaultSecretDeleted(f"the current version {info.version} of {ref} is {state}", path=str(ref))
            self._secret_gone(cycle, works, info.version, gone)
            return
        stale = [w for w in works if _needs_read(w, info)]
        if not stale:
            return
        try:
            secret = self._source.read(ref, kv, info.version)
        except (VaultSecretNotFound, VaultSecretDeleted) as exc:
            self._secret_gone(cycle, stale, info.version, exc)
            return
        except SyncdError as exc:
            for work in stale:
                work.fail(exc)
            return
        for work in stale:
            work.version, work.created = secret.version, secret.created_time
            try:
                work.desire = self._desire(cycle, work, secret)
            except SyncdError as exc:
                work.fail(exc)
            except Exception as exc:
                log_internal(exc, [work.name], secret=str(ref))
                work.fail_internal(exc)

    def _secret_gone(self, cycle: _Cycle, works: list[_Work], version: int | None, exc: SyncdError) -> None:
        for work in works:
            if cycle.policy.on_delete != "delete":
                work.fail(exc)
                continue
            # Delete what syncd owns. A mapping that never synced reports the missing secret (a typo
            # in the path should not look like success); one that did is in sync once cleaned up.
            work.desire = MappingDesire(
                work.name,
                work.target,
                work.mapping.vault.ref,
                version,
                vanished=frozenset(r.name for r in work.records if r.target == work.target),
            )
            if work.status is None or work.status.last_success_at is None:
                work.gone = exc

    def _desire(self, cycle: _Cycle, work: _Work, secret: SecretVersion) -> MappingDesire:
        mapping = work.mapping
        bindings, dropped = bindings_for(mapping, work.target, secret, on_delete=cycle.policy.on_delete)
        vanished = set(dropped)
        text = mapping.secret_text
        if (
            text is not None
            and text.all_keys
            and work.status
            and work.status.config_fingerprint == work.config_fingerprint
        ):
            # Same configuration, fewer Vault keys: the recorded names no longer produced vanished.
            produced = {b.name for b in bindings} | set(mapping.static_binding_names())
            vanished |= {r.name for r in work.records if r.target == work.target and r.name not in produced}
        return MappingDesire(
            work.name, work.target, work.mapping.vault.ref, secret.version, tuple(bindings), frozenset(vanished)
        )

    # --- 3. ownership and the plan ----------------------------------------------------------------

    def _remote_names(self, cycle: _Cycle) -> dict[Target, set[str]]:
        """The secret names of every target where ownership must be decided, listed in parallel
        (``write_concurrency`` at a time, through the shared pacer). A target in backoff is not
        listed: nothing would be written to it anyway."""
        desires = [w.desire for w in cycle.works if w.desire is not None]
        targets = sorted(targets_needing_names(desires, cycle.records))
        if not targets:
            return {}
        writing: dict[Target, list[_Work]] = defaultdict(list)
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

    def _list_names(self, cycle: _Cycle, target: Target) -> set[str] | Exception:
        blocked = self._backoff.blocked(target)
        if blocked is not None:
            return blocked
        if self._past_deadline(cycle):
            return CycleTimeout(f"cycle deadline passed before listing the secrets of {target}")
        try:
            return {s.name for s in self._workers.list_secrets(target)}
        except Exception as exc:  # SyncdError: reported per mapping; anything else: a bug, see above
            return exc

    def _plan(self, cycle: _Cycle, remote: dict[Target, set[str]], *, full: bool) -> Plan:
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
        )

    # --- 4. results -------------------------------------------------------------------------------

    def _results(self, cycle: _Cycle, the_plan: Plan, applied: ApplyResult) -> list[MappingResult]:
        results = []
        for work in cycle.works:
            changes = the_plan.changes_for(work.name) if work.desire is not None else ()
            code, error = work.error_code, work.error
            if code is None and not work.started:
                cycle.timed_out = True
                timeout = CycleTimeout("cycle deadline passed before this mapping was checked")
                code, error = timeout.reason, str(timeout)
            failure = applied.failures.get(work.name)
            if code is None and failure is not None:
                code, error = failure.reason, str(failure)
            if code is None and work.gone is not None:
                code, error = work.gone.reason, str(work.gone)
            if code == "CycleTimeout":  # a call the deadline did not let start (syncd.deadlines)
                cycle.timed_out = True
            if code is None:
                code, error = _staged_status(work, applied)
            pending = any(c.action is not Action.ADOPT for c in changes)
            in_sync = code is None and not (cycle.dry_run and pending)
            results.append(
                MappingResult(
                    work.name, work.target, work.mapping.vault.ref, in_sync, work.version, changes, code, error
                )
            )
        results.extend(self._removed_results(cycle, the_plan, applied))
        return results

    @staticmethod
    def _removed_results(cycle: _Cycle, the_plan: Plan, applied: ApplyResult) -> list[MappingResult]:
        if not cycle.removed:
            return []
        removed = set(cycle.removed)
        by_mapping: dict[str, list[BindingRecord]] = defaultdict(list)
        for record in cycle.records:
            if record.mapping in removed:
                by_mapping[record.mapping].append(record)
        results = []
        for name in cycle.removed:
            changes = the_plan.changes_for(name)
            if not changes or not by_mapping.get(name):
                continue
            first = by_mapping[name][0]
            failure = applied.failures.get(name)
            results.append(
                MappingResult(
                    name,
                    first.target,
                    first.ref,
                    failure is None and not cycle.dry_run,
                    first.vault_version,
                    changes,
                    None if failure is None else failure.reason,
                    None if failure is None else str(failure),
                )
            )
        return results

    def _record(self, cycle: _Cycle, results: Sequence[MappingResult], applied: ApplyResult) -> None:
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


STAGED_PREFIX = "Staged("


def staged_code(number: int) -> str:
    return f"{STAGED_PREFIX}{number})"


def staged_number(error_code: str | None) -> int | None:
    """N of a ``Staged(N)`` status code, else None."""
    if error_code is None or not error_code.startswith(STAGED_PREFIX) or not error_code.endswith(")"):
        return None
    digits = error_code[len(STAGED_PREFIX) : -1]
    return int(digits) if digits.isdigit() else None


def _staged_status(work: _Work, applied: ApplyResult) -> tuple[str | None, str | None]:
    """``Staged(N)`` for a mapping staged now, or staged before and not written since; else no code."""
    staged = applied.staged.get(work.name)
    if staged is not None:
        return staged_code(staged.number), (
            f"staged in version {staged.number}, not deployed (version {staged.id} of {work.target.script}: its "
            "latest version was not fully deployed; the rollout is left to the team's deployment process)"
        )
    status = work.status
    if status is not None and work.name not in applied.pushed and staged_number(status.last_error_code) is not None:
        return status.last_error_code, status.last_error
    return None, None


def _needs_read(work: _Work, info: VersionInfo) -> bool:
    status = work.status
    return (
        info.version is None  # KV v1: no versions, compare the content
        or status is None
        or not status.in_sync
        or status.config_fingerprint != work.config_fingerprint
        or status.last_version != info.version
    )


def _created(cycle: _Cycle) -> dict[str, datetime]:
    return {w.name: w.created for w in cycle.works if w.created is not None}
