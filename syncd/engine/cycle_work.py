"""The values one reconciliation carries from step to step: a ``MappingWork`` per configured mapping
and the ``CycleWork`` around them. Internal to ``syncd.engine`` (the reconciler and source checks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from syncd.config import MappingSettings, Settings, VaultSource
from syncd.engine.fingerprint import Fingerprinter
from syncd.engine.planner import MappingDesire, Policy
from syncd.engine.state import BindingRecord, MappingStatus
from syncd.errors import InternalError, SyncdError
from syncd.model import SecretVersion, Target, VaultSecretRef, VersionInfo
from syncd.redaction import scrub_error


@dataclass(slots=True)
class MappingWork:
    """One configured mapping through one cycle."""

    mapping: MappingSettings
    target: Target
    config_fingerprint: str
    status: MappingStatus | None
    records: list[BindingRecord]
    started: bool = False
    version: int | None = None  # the primary source's
    created: datetime | None = None  # the primary source's version's created_time
    # source name -> version; a mapping of one KV source keeps it in ``version`` alone (no dict per
    # mapping per cycle: 10,000 of them cost megabytes of heap for nothing)
    versions: dict[str, int | str | None] | None = None
    primary_checked: bool = False
    stale: bool = False  # some source changed (or must be re-read): the values are computed anew
    desire: MappingDesire | None = None
    error_code: str | None = None
    error: str | None = None
    gone: SyncdError | None = None  # a source vanished and on_delete = "delete" handles it
    settled: bool = False  # failed, or a source vanished: nothing more to do for it this cycle

    @property
    def name(self) -> str:
        return self.mapping.name

    def fail(self, exc: SyncdError) -> None:
        if self.error_code is None:
            self.error_code, self.error = exc.reason, scrub_error(str(exc))  # kept: state, /status, CLI
        self.desire = None
        self.settled = True

    def fail_internal(self, exc: BaseException) -> None:
        error = InternalError.of(exc)
        self.error_code, self.error = error.reason, str(error)
        self.desire = None
        self.settled = True

    def moved_sources(self) -> tuple[tuple[str, int | str | None, int | str | None], ...]:
        """(name, recorded, current) of each source whose version moved since the last success."""
        status = self.status
        if status is None:
            return ()
        moved = []
        for source in self.mapping.sources:
            checked, now = self.version_of(source)
            if not checked:
                continue  # not checked this cycle
            in_last = source is self.mapping.vault and source.is_kv
            before = status.last_version if in_last else status.source_version(source.name)
            if now is not None and before != now:
                moved.append((source.name, before, now))
        return tuple(moved)

    def more_source_versions(self) -> tuple[tuple[str, int | str | None], ...]:
        """The versions the state records beside ``last_version`` (the primary KV source's): those
        of the other sources, and of a primary database static role (its version is a text)."""
        primary = self.mapping.vault
        apart = self.mapping.more_sources if primary.is_kv else self.mapping.sources
        return tuple(sorted((s.name, self.version_of(s)[1]) for s in apart))

    def note_version(self, source: VaultSource, version: int | str | None, created: datetime | None) -> None:
        """Note a source's version; ``created`` is the newest source version's time (what a push's
        propagation delay is measured from)."""
        if self.mapping.more_sources or not source.is_kv:
            if self.versions is None:
                self.versions = {}
            self.versions[source.name] = version
        if source is self.mapping.vault:
            self.primary_checked = True
            if not isinstance(version, str):
                self.version = version
        if created is not None and (self.created is None or created > self.created):
            self.created = created

    def version_of(self, source: VaultSource) -> tuple[bool, int | str | None]:
        """(checked this cycle, its version)."""
        if self.versions is not None and source.name in self.versions:
            return True, self.versions[source.name]
        if source is self.mapping.vault and source.is_kv and self.primary_checked:
            return True, self.version
        return False, None


@dataclass
class CycleWork:
    settings: Settings
    policy: Policy
    fingerprinter: Fingerprinter
    deadline: float | None
    dry_run: bool
    works: list[MappingWork]
    records: list[BindingRecord]
    corrections: frozenset[tuple[Target, str]] = frozenset()
    timed_out: bool = False
    removed: list[str] = field(default_factory=list)
    # Each distinct source's current version and, where some mapping needed its values, the read.
    infos: dict[VaultSecretRef, VersionInfo] = field(default_factory=dict)
    reads: dict[VaultSecretRef, SecretVersion] = field(default_factory=dict)
    # When Vault rotates each database static role next (epoch seconds), as its read announced.
    next_rotations: dict[VaultSecretRef, float] = field(default_factory=dict)
