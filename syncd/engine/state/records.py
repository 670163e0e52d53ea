"""What the state store holds, as values: a binding syncd knows on a target and how a mapping fared."""

from __future__ import annotations

from dataclasses import dataclass

from syncd.model import Target, VaultSecretRef
from syncd.redaction import scrub_error

SourceVersions = tuple[tuple[str, int | str | None], ...]  # (source name, version) of a mapping's more sources

STAGED_CODE = "Staged"  # the status code of a staged mapping; its version is in ``staged_version``


@dataclass(frozen=True, slots=True)
class BindingRecord:
    target: Target
    name: str
    mapping: str
    ref: VaultSecretRef
    vault_version: int | None
    fingerprint: str | None  # None for adopted bindings (missing-only): the value on the Worker is unknown
    shape: str  # DesiredBinding.shape()
    owned: bool  # True only if syncd created it (False for adopted / pre-existing)
    pushed_at: float | None
    # A write intent: syncd may have written this binding (the outcome of the call is unknown);
    # ``owned`` is as decided before the call, fingerprint, version and pushed_at are None.
    pending: bool = False


@dataclass(frozen=True, slots=True)
class MappingStatus:
    mapping: str
    config_fingerprint: str | None
    last_version: int | None
    last_success_at: float | None
    last_attempt_at: float | None
    last_pushed_at: float | None
    last_error_code: str | None
    last_error: str | None
    in_sync: bool
    # Written into a Worker version that is not deployed yet (``on_undeployed = "stage"``): that
    # version's number. The mapping is not in sync until the drift checker sees it deployed.
    staged_version: int | None = None
    # The versions of the mapping's sources beyond the primary one (whose version is ``last_version``),
    # as of the last success; empty for a one-source mapping.
    source_versions: SourceVersions = ()

    def source_version(self, name: str) -> int | str | None:
        return dict(self.source_versions).get(name)


@dataclass(frozen=True, slots=True)
class MappingOutcome:
    """One attempt at a mapping, as ``record_mapping_results`` stores it.

    Success (no error): config fingerprint, version and ``last_success_at`` move to this attempt.
    Failure: they keep their previous values (so the next cycle still sees the change it failed
    to apply) and the error is recorded. ``pushed`` moves ``last_pushed_at`` either way.
    Staged (``staged_version`` set): the changes were written into an undeployed version, so the
    version and configuration are applied as on success; the mapping is only not in sync.
    """

    mapping: str
    at: float
    config_fingerprint: str | None
    version: int | None
    in_sync: bool
    pushed: bool
    error_code: str | None
    error: str | None
    staged_version: int | None = None
    source_versions: SourceVersions = ()

    def applied_to(self, previous: MappingStatus) -> MappingStatus:
        staged = self.staged_version is not None
        failed = (self.error_code is not None or self.error is not None) and not staged
        return MappingStatus(
            mapping=self.mapping,
            config_fingerprint=previous.config_fingerprint if failed else self.config_fingerprint,
            last_version=previous.last_version if failed else self.version,
            last_success_at=previous.last_success_at if failed else self.at,
            last_attempt_at=self.at,
            last_pushed_at=self.at if self.pushed else previous.last_pushed_at,
            last_error_code=self.error_code,
            last_error=None if self.error is None else scrub_error(self.error),
            in_sync=self.in_sync,
            staged_version=self.staged_version,
            source_versions=previous.source_versions if failed else self.source_versions,
        )
