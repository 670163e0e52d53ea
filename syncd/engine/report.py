"""What one reconciliation did or would do: plain frozen records, no values.

The app layer turns a ``CycleReport`` into metrics, ``/status`` and command-line output; the engine
logs each push as it happens.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from datetime import datetime

from syncd.model import Target, VaultSecretRef


class Action(enum.StrEnum):
    WRITE = "write"
    DELETE = "delete"
    ADOPT = "adopt"  # initial_sync = "missing-only": the Worker already has it; recorded, not written


class Trigger(enum.StrEnum):
    """Why a cycle runs: the ``trigger`` of a ``CycleReport``, its log lines and the
    ``syncd_cycles_total{trigger}`` label (every member is a label value, nothing else is)."""

    STARTUP = "startup"  # the service's first cycle
    INTERVAL = "interval"  # a full sweep: the interval job, or the sweep at a change of sync mode
    BACKSTOP = "backstop"  # backstop mode: the interval job's slice of the secrets plus the retries
    NOTIFICATION = "notification"  # a Vault write that the audit device or the event stream reported
    SCHEDULED = "scheduled"  # a check just after a rotation Vault announced (a static role's ttl)
    MANUAL = "manual"  # an operator's POST /trigger
    DRIFT = "drift"  # a correction of bindings someone else changed (drift checks)
    TAKEOVER = "takeover"  # this replica just took the leader Lease
    ONCE = "once"  # `syncd once`
    PLAN = "plan"  # `syncd plan` (a dry run)


class Reason(enum.StrEnum):
    NEW = "new"  # never pushed by syncd
    CHANGED = "changed"  # the value's fingerprint differs from the one recorded
    CONFIG_CHANGED = "config-changed"  # binding kind/format/algorithm/usages changed
    PRESENT = "present"  # missing-only: the Worker has it already (adopted)
    VAULT_DELETED = "vault-deleted"  # on_delete = "delete": the secret or key disappeared
    PRUNED = "pruned"  # prune = true: the mapping left the config
    DRIFT = "drift"  # someone else changed or removed the binding: written again (a DriftCorrection)


@dataclass(frozen=True, slots=True)
class PlannedChange:
    mapping: str
    target: Target
    binding: str
    action: Action
    reason: Reason
    vault_version: int | None


@dataclass(frozen=True, slots=True)
class PushRecord:
    """One confirmed (or refused) Cloudflare call for one target."""

    target: Target
    mappings: tuple[str, ...]
    written: tuple[str, ...]
    deleted: tuple[str, ...]
    outcome: str  # "ok" | "error"
    seconds: float
    confirmed_at: float | None  # epoch seconds when Cloudflare confirmed; None on error
    vault_created: dict[str, datetime] = field(default_factory=dict)  # mapping -> version created_time
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class MappingResult:
    mapping: str
    target: Target
    ref: VaultSecretRef
    in_sync: bool
    vault_version: int | None
    changes: tuple[PlannedChange, ...] = ()
    error_code: str | None = None  # e.g. "VaultPermissionDenied", "CloudflareNotDeployed(10215)", "Staged"
    error: str | None = None  # a human reason; never a value
    # Written into Worker version N, which is not deployed (``error_code`` is then ``STAGED``).
    staged_version: int | None = None
    # The versions of the mapping's sources beyond the primary one (``vault_version``), by name.
    source_versions: tuple[tuple[str, int | str | None], ...] = ()
    # The sources whose version differs from the one of the last success: (name, before, now).
    moved_sources: tuple[tuple[str, int | str | None, int | str | None], ...] = ()

    @property
    def failed(self) -> bool:
        return self.error_code is not None


@dataclass(frozen=True)
class CycleReport:
    cycle_id: str
    trigger: Trigger
    started_at: float
    finished_at: float
    results: tuple[MappingResult, ...]
    pushes: tuple[PushRecord, ...] = ()
    dry_run: bool = False
    timed_out: bool = False
    # Mapping -> when Vault rotates one of its database static roles next (epoch seconds): the
    # service checks the mapping again just after that (``syncd.app.service.rotation_schedule``).
    next_checks: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.timed_out and all(not r.failed for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 all in sync, 1 some mappings failed (the command line's contract)."""
        return 0 if self.ok else 1

    @functools.cached_property
    def changes(self) -> tuple[PlannedChange, ...]:
        """Every change of the cycle (computed once: metrics look at it per push)."""
        return tuple(c for r in self.results for c in r.changes)

    @functools.cached_property
    def writes_by_binding(self) -> dict[tuple[Target, str], PlannedChange]:
        """The cycle's WRITE changes by (target, binding name): one lookup per written binding."""
        return {(c.target, c.binding): c for c in self.changes if c.action is Action.WRITE}
