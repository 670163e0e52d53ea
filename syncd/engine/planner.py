"""Planning: what one mapping wants (desired bindings) against what syncd recorded -> the changes.

Pure: no I/O, no clock. The reconciler gathers the inputs (Vault reads, recorded bindings, the
Worker's secret names where ownership must be decided) and the applier carries the plan out.

Rules for a desired binding (its record is looked up by target and name):

- no record: WRITE/NEW; ``owned`` only if the Worker did not already have that name (invariant 5).
  The write carries an ``intent``: the applier records it (``pending``) before the Cloudflare call,
  so the ownership decided here survives a crash between Cloudflare's confirmation and the record.
  With ``initial_sync = "missing-only"`` a name the Worker already has is ADOPTED instead: recorded,
  not owned, not written, fingerprint None (the Worker's value is unknown);
- a pending record (a write intent left by an unconfirmed or unrecorded call): syncd may have
  written it, its value on the Worker is unknown: WRITE/CHANGED, ownership as recorded. The
  Worker's names are not asked again (they would now show syncd's own write as pre-existing);
- the shape (type, format, algorithm, usages) differs: WRITE/CONFIG_CHANGED;
- recorded fingerprint None (adopted) and the Vault version is newer: WRITE/CHANGED;
- someone else changed or removed it (a drift correction): WRITE/DRIFT;
- the keyed fingerprint differs: WRITE/CHANGED; otherwise nothing.

A KV v1 secret has no versions, so adopting one of its bindings records the fingerprint of the
Vault value at adoption instead of None: a later change of that value is then written, as a new
version would be for KV v2.

A recorded binding of a mapping that the mapping no longer wants is left alone unless a policy
says otherwise: ``on_delete = "delete"`` deletes it when its Vault source vanished (a key, or the
whole secret: VAULT_DELETED); ``prune = true`` deletes it when the configuration stopped asking for
it (a renamed binding, a removed mapping: PRUNED). Only owned bindings are deleted; a record of a
binding syncd does not own is just forgotten. Without the policy the record is kept, so putting the
binding or mapping back costs no write and keeps its ownership, and turning ``prune`` on later
still cleans up.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from syncd.config import SyncSettings
from syncd.engine.fingerprint import Fingerprinter
from syncd.engine.report import Action, PlannedChange, Reason
from syncd.engine.state import BindingRecord
from syncd.engine.values import DesiredBinding
from syncd.model import Target, VaultSecretRef

BindingKey = tuple[Target, str]


@dataclass(frozen=True)
class Policy:
    initial_sync: Literal["push", "missing-only"] = "push"
    on_delete: Literal["keep", "delete"] = "keep"
    prune: bool = False

    @classmethod
    def of(cls, sync: SyncSettings) -> Policy:
        return cls(initial_sync=sync.initial_sync, on_delete=sync.on_delete, prune=sync.prune)


@dataclass(frozen=True, slots=True)
class MappingDesire:
    """What one mapping wants on its target for one Vault version.

    ``vanished``: recorded binding names (on ``target``) whose Vault source is gone, a key or the
    whole secret; only these may be deleted under ``on_delete = "delete"``.
    """

    mapping: str
    target: Target
    ref: VaultSecretRef
    vault_version: int | None
    bindings: tuple[DesiredBinding, ...] = ()
    vanished: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Write:
    """Create or update one binding; ``record`` is stored once Cloudflare confirmed (``pushed_at`` set then).

    ``intent``: for a binding with no record yet, the pending record to store before the call.
    """

    binding: DesiredBinding
    change: PlannedChange
    record: BindingRecord
    intent: BindingRecord | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete one owned binding; its record is forgotten once Cloudflare confirmed."""

    change: PlannedChange
    record: BindingRecord


@dataclass(frozen=True)
class TargetPlan:
    """Every Cloudflare change for one Worker script, across all mappings (invariant 4)."""

    target: Target
    writes: tuple[Write, ...] = ()
    deletes: tuple[Delete, ...] = ()

    @functools.cached_property
    def mappings(self) -> tuple[str, ...]:
        return tuple(sorted({w.change.mapping for w in self.writes} | {d.change.mapping for d in self.deletes}))


@dataclass(frozen=True)
class Plan:
    targets: tuple[TargetPlan, ...] = ()
    # State-only work, no Cloudflare call: adoptions and records taken over by another mapping ...
    record_only: tuple[BindingRecord, ...] = ()
    # ... and records of bindings syncd does not own that a delete/prune policy lets go of.
    forget: tuple[BindingRecord, ...] = ()
    adoptions: tuple[PlannedChange, ...] = ()

    # Computed once per plan (frozen dataclasses keep a __dict__, so cached_property works): a
    # cycle asks for every mapping's changes, which must cost O(changes) in total, not per mapping.
    @functools.cached_property
    def changes(self) -> tuple[PlannedChange, ...]:
        cloudflare = [c for t in self.targets for c in (*(w.change for w in t.writes), *(d.change for d in t.deletes))]
        return (*cloudflare, *self.adoptions)

    @functools.cached_property
    def _changes_by_mapping(self) -> dict[str, tuple[PlannedChange, ...]]:
        grouped: dict[str, list[PlannedChange]] = defaultdict(list)
        for change in self.changes:
            grouped[change.mapping].append(change)
        return {mapping: tuple(changes) for mapping, changes in grouped.items()}

    def changes_for(self, mapping: str) -> tuple[PlannedChange, ...]:
        return self._changes_by_mapping.get(mapping, ())


def targets_needing_names(desires: Iterable[MappingDesire], records: Iterable[BindingRecord]) -> set[Target]:
    """Targets where some desired binding has no record: ownership needs the Worker's current names."""
    known = {(r.target, r.name) for r in records}
    return {b.target for d in desires for b in d.bindings if (b.target, b.name) not in known}


@dataclass
class _Builder:
    writes: dict[Target, list[Write]] = field(default_factory=lambda: defaultdict(list))
    deletes: dict[Target, list[Delete]] = field(default_factory=lambda: defaultdict(list))
    record_only: list[BindingRecord] = field(default_factory=list)
    forget: list[BindingRecord] = field(default_factory=list)
    adoptions: list[PlannedChange] = field(default_factory=list)

    def let_go(self, record: BindingRecord, reason: Reason, version: int | None, mapping: str) -> None:
        if record.owned:
            change = PlannedChange(mapping, record.target, record.name, Action.DELETE, reason, version)
            self.deletes[record.target].append(Delete(change, record))
        else:
            self.forget.append(record)

    def build(self) -> Plan:
        targets = sorted(set(self.writes) | set(self.deletes))
        return Plan(
            targets=tuple(
                TargetPlan(
                    t,
                    tuple(sorted(self.writes.get(t, ()), key=lambda w: w.binding.name)),
                    tuple(sorted(self.deletes.get(t, ()), key=lambda d: d.record.name)),
                )
                for t in targets
            ),
            record_only=tuple(self.record_only),
            forget=tuple(self.forget),
            adoptions=tuple(self.adoptions),
        )


def plan(
    desires: Sequence[MappingDesire],
    records: Iterable[BindingRecord],
    fingerprinter: Fingerprinter,
    policy: Policy,
    *,
    remote_names: Mapping[Target, Collection[str]] | None = None,
    removed_mappings: Collection[str] = (),
    claimed: Mapping[BindingKey, str] | None = None,
    corrections: Collection[BindingKey] = (),
) -> Plan:
    """The changes that bring the recorded world to the desired one.

    ``remote_names`` must hold every target that ``targets_needing_names`` returns. ``removed_mappings``
    are mappings gone from the configuration (pruned only with ``policy.prune``); ``claimed`` maps the
    (target, name) pairs that configured mappings name to the mapping naming each: another mapping
    never deletes or prunes them. ``corrections``: recorded bindings that someone else changed or
    removed (drift): written again whatever their recorded fingerprint.
    """
    all_records = list(records)
    index: dict[BindingKey, BindingRecord] = {(r.target, r.name): r for r in all_records}
    by_mapping: dict[str, list[BindingRecord]] = defaultdict(list)
    for record in all_records:
        by_mapping[record.mapping].append(record)
    wanted: set[BindingKey] = {(b.target, b.name) for d in desires for b in d.bindings}
    claims = claimed or {}

    def protected(record: BindingRecord) -> bool:
        key = (record.target, record.name)
        return key in wanted or claims.get(key, record.mapping) != record.mapping

    out = _Builder()

    for desire in desires:
        for binding in desire.bindings:
            known = index.get((binding.target, binding.name))
            _plan_binding(
                out,
                desire,
                binding,
                known,
                fingerprinter=fingerprinter,
                policy=policy,
                remote=remote_names,
                drifted=(binding.target, binding.name) in corrections,
            )
        for record in by_mapping.get(desire.mapping, ()):
            if protected(record):
                continue
            if record.target == desire.target and record.name in desire.vanished:
                if policy.on_delete == "delete":
                    out.let_go(record, Reason.VAULT_DELETED, desire.vault_version, desire.mapping)
            elif policy.prune:
                out.let_go(record, Reason.PRUNED, desire.vault_version, desire.mapping)

    if policy.prune:
        for name in sorted(removed_mappings):
            for record in by_mapping.get(name, ()):
                if not protected(record):
                    out.let_go(record, Reason.PRUNED, record.vault_version, name)
    return out.build()


def _plan_binding(
    out: _Builder,
    desire: MappingDesire,
    binding: DesiredBinding,
    record: BindingRecord | None,
    *,
    fingerprinter: Fingerprinter,
    policy: Policy,
    remote: Mapping[Target, Collection[str]] | None,
    drifted: bool = False,
) -> None:
    fingerprint = fingerprinter.of(binding.body)
    shape = binding.shape()
    version = desire.vault_version

    def record_of(*, owned: bool, recorded_fingerprint: str | None) -> BindingRecord:
        return BindingRecord(
            target=binding.target,
            name=binding.name,
            mapping=desire.mapping,
            ref=desire.ref,
            vault_version=version,
            fingerprint=recorded_fingerprint,
            shape=shape,
            owned=owned,
            pushed_at=None,
        )

    def write(reason: Reason, owned: bool, *, first: bool = False) -> None:
        change = PlannedChange(desire.mapping, binding.target, binding.name, Action.WRITE, reason, version)
        record = record_of(owned=owned, recorded_fingerprint=fingerprint)
        intent = dataclasses.replace(record, vault_version=None, fingerprint=None, pending=True) if first else None
        out.writes[binding.target].append(Write(binding, change, record, intent))

    if record is None:
        names = None if remote is None else remote.get(binding.target)
        if names is None:
            raise ValueError(f"the planner needs the secret names on {binding.target} to decide ownership")
        present = binding.name in names
        if present and policy.initial_sync == "missing-only":
            adopted = record_of(owned=False, recorded_fingerprint=fingerprint if version is None else None)
            out.record_only.append(adopted)
            out.adoptions.append(
                PlannedChange(desire.mapping, binding.target, binding.name, Action.ADOPT, Reason.PRESENT, version)
            )
        else:
            write(Reason.NEW, owned=not present, first=True)
    elif record.pending:
        write(Reason.CHANGED, record.owned)
    elif drifted:
        write(Reason.DRIFT, record.owned)
    elif record.shape != shape:
        write(Reason.CONFIG_CHANGED, record.owned)
    elif record.fingerprint is None:
        if version is not None and (record.vault_version is None or version > record.vault_version):
            write(Reason.CHANGED, record.owned)
        elif record.mapping != desire.mapping or record.ref != desire.ref:
            out.record_only.append(_taken_over(record, desire))
    elif record.fingerprint != fingerprint:
        write(Reason.CHANGED, record.owned)
    elif record.mapping != desire.mapping or record.ref != desire.ref:
        out.record_only.append(_taken_over(record, desire))


def _taken_over(record: BindingRecord, desire: MappingDesire) -> BindingRecord:
    """The same binding now written by another mapping (or from another path): relabel, no call."""
    return dataclasses.replace(record, mapping=desire.mapping, ref=desire.ref)
