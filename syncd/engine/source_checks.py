"""Step 2 of a reconciliation: the mappings' sources in Vault, and the values they ask for.

Every distinct source (a Vault secret) is checked once per cycle, however many mappings use it, in
a bounded thread pool: one metadata read (KV v2; KV v1 has no versions and is read every time).
A mapping is *stale* when one of its sources has a version other than the one recorded for it (the
primary source's in ``last_version``, the others' in ``source_versions``), when it has no status
yet, a changed configuration, an unresolved failure, or a drift correction. The data of a source is
read (that exact version) only if some stale mapping uses it, once for all of them: first the
sources whose own version moved, right after their metadata read (the common, one-source case costs
no second round), then, for a stale mapping of several sources, the ones it still lacks.

A database static role (``kind = "database"``) has no metadata to read: its check is the one read
of ``{mount}/static-creds/{role}``, and its version is ``last_vault_rotation`` with a keyed
fingerprint of the username and password (``role_version``), recorded with the mapping's other
source versions. The rotation Vault announces next (``ttl``) is kept per source in
``CycleWork.next_rotations``: the service checks the role again just after it (``next_checks``).

A source that is gone (not found, or its current version deleted or destroyed) fails the mappings
that use it, or, with ``on_delete = "delete"``, makes them delete what syncd owns. Any other error
fails the mappings of that source only (invariant 6).
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from syncd.config import VaultSource
from syncd.engine.applier import log_internal
from syncd.engine.cycle_work import CycleWork, MappingWork
from syncd.engine.fingerprint import Fingerprinter
from syncd.engine.planner import MappingDesire
from syncd.engine.ports import SecretSource
from syncd.engine.values import bindings_for
from syncd.errors import SyncdError, VaultSecretDeleted, VaultSecretNotFound
from syncd.model import KvVersion, SecretData, SecretVersion, StaticRoleCreds, VaultSecretRef, VersionInfo

Use = tuple[MappingWork, VaultSource]  # one mapping's use of one source
T = TypeVar("T")


class SourceChecks:
    def __init__(
        self,
        source: SecretSource,
        *,
        concurrency: int | None,
        past_deadline: Callable[[CycleWork], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._concurrency = concurrency
        self._past_deadline = past_deadline
        self._clock = clock

    def run(self, cycle: CycleWork) -> None:
        groups: dict[VaultSecretRef, list[Use]] = defaultdict(list)
        roles: dict[VaultSecretRef, list[Use]] = defaultdict(list)
        for work in cycle.works:
            for source in work.mapping.sources:
                (groups if source.is_kv else roles)[source.ref].append((work, source))
        kv_versions = self._kv_versions(cycle, groups)
        checks: list[Callable[[], None]] = [
            functools.partial(self._check_guarded, cycle, ref, uses, kv_versions[ref])
            for ref, uses in groups.items()
            if ref in kv_versions
        ]
        checks.extend(functools.partial(self._check_guarded, cycle, ref, uses, None) for ref, uses in roles.items())
        self._in_pool(cycle, checks, lambda job: job())
        missing = self._missing_reads(cycle, groups, kv_versions)
        self._in_pool(cycle, missing, lambda job: self._read_guarded(cycle, *job))
        for work in cycle.works:
            if work.stale and not work.settled and work.desire is None:
                self._desire_guarded(cycle, work)

    # -- the pool -------------------------------------------------------------------------------------

    def _in_pool(self, cycle: CycleWork, jobs: list[T], run: Callable[[T], None]) -> None:
        if not jobs:
            return
        size = max(1, min(self._concurrency or cycle.settings.vault.concurrency, len(jobs)))
        pending = iter(jobs)
        taking = threading.Lock()

        def drain() -> None:
            # One task per worker pulling jobs until none is left: no future per secret.
            while True:
                with taking:
                    job = next(pending, None)
                if job is None:
                    return
                run(job)

        with ThreadPoolExecutor(max_workers=size, thread_name_prefix="syncd-vault") as pool:
            # Each worker runs in a copy of this thread's context, so its log lines carry the cycle id.
            futures = [pool.submit(contextvars.copy_context().run, drain) for _ in range(size)]
            for future in futures:
                future.result()

    # -- KV versions ------------------------------------------------------------------------------

    def _kv_versions(
        self, cycle: CycleWork, groups: dict[VaultSecretRef, list[Use]]
    ) -> dict[VaultSecretRef, KvVersion]:
        """Each secret's KV version: as a mapping states it, else the mount's (asked once per mount)."""
        by_mount: dict[str, KvVersion | SyncdError] = {}
        resolved: dict[VaultSecretRef, KvVersion] = {}
        for ref, uses in groups.items():
            stated = next((s.stated_kv_version for _, s in uses if s.stated_kv_version is not None), None)
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
                for work, _ in uses:
                    work.started = True
                    work.fail(found)
            else:
                resolved[ref] = found
        return resolved

    # -- one source: its version, and its values where a mapping needs them -----------------------

    def _check_guarded(
        self, cycle: CycleWork, ref: VaultSecretRef, uses: list[Use], kv: KvVersion | None
    ) -> None:
        """Check one source: a KV secret of version ``kv``, or (``kv`` None) a database static role."""
        if self._past_deadline(cycle):
            return
        for work, _ in uses:
            work.started = True
        try:
            if kv is None:
                self._check_role(cycle, ref, uses)
            else:
                self._check(cycle, ref, uses, kv)
        except Exception as exc:
            log_internal(exc, [w.name for w, _ in uses], secret=str(ref))
            for work, _ in uses:
                work.fail_internal(exc)

    def _check(self, cycle: CycleWork, ref: VaultSecretRef, uses: list[Use], kv: KvVersion) -> None:
        try:
            info = self._source.current_version(ref, kv)
        except (VaultSecretNotFound, VaultSecretDeleted) as exc:
            self._gone(cycle, uses, None, exc)
            return
        except SyncdError as exc:
            for work, _ in uses:
                work.fail(exc)
            return
        shared = any(w.mapping.more_sources for w, _ in uses)  # some mapping needs it beside others
        if shared:
            cycle.infos[ref] = info
        for work, source in uses:
            _note_version(work, source, info.version, info.created_time)
        if info.deleted or info.destroyed:
            state = "destroyed" if info.destroyed else "deleted"
            gone = VaultSecretDeleted(f"the current version {info.version} of {ref} is {state}", path=str(ref))
            self._gone(cycle, uses, info.version, gone)
            return
        moved = [(w, s) for w, s in uses if _moved(w, s, info.version, cycle.corrections)]
        for work, _ in moved:
            work.stale = True
        if moved:
            self._read(cycle, ref, [w for w, _ in uses if w.stale], kv, info, keep=shared)

    def _check_role(self, cycle: CycleWork, ref: VaultSecretRef, uses: list[Use]) -> None:
        """A database static role: its one read is its check; its data serves every stale use."""
        role = uses[0][1]
        try:
            creds = self._source.static_creds(role.mount, role.role)
        except (VaultSecretNotFound, VaultSecretDeleted) as exc:
            self._gone(cycle, uses, None, exc)
            return
        except SyncdError as exc:
            for work, _ in uses:
                work.fail(exc)
            return
        version = role_version(creds, cycle.fingerprinter)
        rotated = creds.rotated_at
        cycle.reads[ref] = SecretVersion(ref, KvVersion.V1, None, rotated, creds.data)  # unversioned, as KV v1
        announced = announced_rotation(creds, self._clock())
        if announced is not None:
            cycle.next_rotations[ref] = announced
        for work, source in uses:
            _note_version(work, source, version, rotated)
            if _moved(work, source, version, cycle.corrections):
                work.stale = True

    def _read(
        self,
        cycle: CycleWork,
        ref: VaultSecretRef,
        works: Iterable[MappingWork],
        kv: KvVersion,
        info: VersionInfo,
        *,
        keep: bool = True,
    ) -> None:
        """Read ``ref`` for its stale ``works``. A mapping of this one source gets its values at once
        and the data is dropped after (10,000 secrets read in one cycle never stay in memory
        together); ``keep`` holds it for the mappings of several sources, computed at the end."""
        readers = [w for w in works if not w.settled]
        try:
            secret = self._source.read(ref, kv, info.version)
        except (VaultSecretNotFound, VaultSecretDeleted) as exc:
            self._gone(cycle, [(w, s) for w in readers for s in w.mapping.sources if s.ref == ref], info.version, exc)
            return
        except SyncdError as exc:
            for work in readers:
                work.fail(exc)
            return
        cycle.reads[ref] = secret
        for work in readers:
            for source in work.mapping.sources:
                if source.ref == ref:
                    _note_version(work, source, secret.version, secret.created_time)
            if not work.mapping.more_sources and not work.settled:
                self._desire_guarded(cycle, work)
        if not keep:
            del cycle.reads[ref]

    def _missing_reads(
        self, cycle: CycleWork, groups: dict[VaultSecretRef, list[Use]], kv: dict[VaultSecretRef, KvVersion]
    ) -> list[tuple[VaultSecretRef, KvVersion, VersionInfo]]:
        """Sources that a stale mapping of several sources needs but that no check read."""
        wanted: dict[VaultSecretRef, None] = {}
        for work in cycle.works:
            if work.stale and not work.settled:
                for source in work.mapping.sources:
                    if source.ref not in cycle.reads and source.ref in cycle.infos:
                        wanted[source.ref] = None
        return [(ref, kv[ref], cycle.infos[ref]) for ref in wanted]

    def _read_guarded(self, cycle: CycleWork, ref: VaultSecretRef, kv: KvVersion, info: VersionInfo) -> None:
        if self._past_deadline(cycle):
            return
        works = [w for w, _ in self._uses_of(cycle, ref) if w.stale and not w.settled]
        try:
            self._read(cycle, ref, works, kv, info)
        except Exception as exc:
            log_internal(exc, [w.name for w in works], secret=str(ref))
            for work in works:
                work.fail_internal(exc)

    @staticmethod
    def _uses_of(cycle: CycleWork, ref: VaultSecretRef) -> list[Use]:
        return [(w, s) for w in cycle.works for s in w.mapping.sources if s.ref == ref]

    # -- a source that vanished -----------------------------------------------------------------

    @staticmethod
    def _gone(cycle: CycleWork, uses: Iterable[Use], version: int | None, exc: SyncdError) -> None:
        for work, source in uses:
            if work.settled:
                continue
            work.settled = True
            if cycle.policy.on_delete != "delete":
                work.fail(exc)
                continue
            # Delete what syncd owns. A mapping that never synced reports the missing secret (a typo
            # in the path should not look like success); one that did is in sync once cleaned up.
            work.desire = MappingDesire(
                work.name,
                work.target,
                work.mapping.vault.ref,
                version if source is work.mapping.vault else work.version,
                vanished=frozenset(r.name for r in work.records if r.target == work.target),
            )
            if work.status is None or work.status.last_success_at is None:
                work.gone = exc

    # -- the values -----------------------------------------------------------------------------

    def _desire_guarded(self, cycle: CycleWork, work: MappingWork) -> None:
        if any(s.ref not in cycle.reads for s in work.mapping.sources):
            return  # the deadline passed before every source was read: reported as not checked
        try:
            work.desire = self._desire(cycle, work)
        except SyncdError as exc:
            work.fail(exc)
        except Exception as exc:
            log_internal(exc, [work.name], secret=str(work.mapping.vault.ref))
            work.fail_internal(exc)

    @staticmethod
    def _desire(cycle: CycleWork, work: MappingWork) -> MappingDesire:
        mapping = work.mapping
        secret = cycle.reads[mapping.vault.ref]
        others = {s.name: cycle.reads[s.ref] for s in mapping.more_sources}
        bindings, dropped = bindings_for(
            mapping, work.target, secret, on_delete=cycle.policy.on_delete, others=others
        )
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
            work.name, work.target, mapping.vault.ref, secret.version, tuple(bindings), frozenset(vanished)
        )


def _note_version(
    work: MappingWork, source: VaultSource, version: int | str | None, created: datetime | None
) -> None:
    work.note_version(source, version, created)


def _moved(
    work: MappingWork, source: VaultSource, version: int | str | None, corrections: frozenset[tuple[object, str]]
) -> bool:
    """Whether ``work`` must compute its values anew because of this source (or its own state)."""
    if work.settled:
        return False
    status = work.status
    recorded = None
    if status is not None:
        in_last = source is work.mapping.vault and source.is_kv
        recorded = status.last_version if in_last else status.source_version(source.name)
    return (
        version is None  # KV v1: no versions, compare the content
        or status is None
        or not status.in_sync
        or status.config_fingerprint != work.config_fingerprint
        or recorded != version
        or (bool(corrections) and any((r.target, r.name) in corrections for r in work.records))
    )


def role_version(creds: StaticRoleCreds, fingerprinter: Fingerprinter) -> str:
    """A static role's version: ``last_vault_rotation`` and a keyed fingerprint of the username and
    password (so a password changed without a new rotation time is still noticed; never the value)."""
    revealed = creds.data.reveal()
    pair = SecretData({"username": revealed.get("username"), "password": revealed.get("password")})
    return f"{creds.last_vault_rotation or '-'}#{fingerprinter.of_data(pair)[:16]}"


# Within this many seconds, the rotation time Vault states (last rotation + period) and the one its
# ``ttl`` gives (rounded to a second) agree: the clocks match, so the stated, exact time is used.
CLOCKS_AGREE_SECONDS = 1.0


def announced_rotation(creds: StaticRoleCreds, now: float) -> float | None:
    """When Vault will rotate the role next (epoch seconds, syncd's clock), or None if it does not say."""
    by_ttl = None if creds.ttl is None else now + creds.ttl
    exact = creds.next_rotation
    if by_ttl is None:
        return exact
    if exact is not None and abs(exact - by_ttl) <= CLOCKS_AGREE_SECONDS:
        return exact
    return by_ttl
