"""What the engine needs from the clients layer, as protocols.

``syncd.clients.vault.VaultReader`` and ``syncd.clients.cloudflare.CloudflareClient`` implement
them; tests may pass fakes. Every method raises only ``syncd.errors`` types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from syncd.model import (
    KvVersion,
    RemoteSecret,
    SecretBody,
    SecretVersion,
    StaticRoleCreds,
    Target,
    VaultSecretRef,
    VersionInfo,
)
from syncd.model_versions import StagedVersion, WorkerDeployment, WorkerVersion


class SecretSource(Protocol):
    def kv_version(self, mount: str) -> KvVersion:
        """The KV version of a mount (``sys/internal/ui/mounts``), cached by the implementation."""
        ...

    def current_version(self, ref: VaultSecretRef, kv_version: KvVersion) -> VersionInfo:
        """KV v2: one metadata read. KV v1: no request, ``version=None``.

        Raises VaultSecretNotFound, VaultPermissionDenied, VaultUnavailable, VaultAuthError.
        A deleted/destroyed current version is reported in the result, not raised.
        """
        ...

    def read(self, ref: VaultSecretRef, kv_version: KvVersion, version: int | None) -> SecretVersion:
        """Read that exact version (KV v2) or the current data (KV v1).

        Raises VaultSecretDeleted for a soft-deleted or destroyed version, plus the errors above.
        """
        ...

    def static_creds(self, mount: str, role: str) -> StaticRoleCreds:
        """A database static role's credentials: one ``GET {mount}/static-creds/{role}`` (there is
        no cheaper metadata read: this read is the role's version check).

        Raises VaultSecretNotFound for an unknown role, plus the errors of ``current_version``.
        """
        ...


class WorkerSecrets(Protocol):
    def list_secrets(self, target: Target) -> Sequence[RemoteSecret]:
        """GET .../secrets: names and types of the Worker's secrets (one call)."""
        ...

    def bulk_update(self, target: Target, changes: Mapping[str, SecretBody | None]) -> None:
        """PATCH .../secrets-bulk: one call, at most 100 names; ``None`` deletes that name."""
        ...

    def put_secret(self, target: Target, body: SecretBody) -> None:
        """PUT .../secrets: one binding."""
        ...

    def delete_secret(self, target: Target, name: str) -> None:
        """DELETE .../secrets/{name}?url_encoded=true. An absent binding (10056) counts as deleted."""
        ...


class WorkerVersions(Protocol):
    """A Worker's versions and deployment (``syncd.clients.worker_versions`` implements it)."""

    def list_versions(self, target: Target, *, newer_than: int | None = None) -> list[WorkerVersion]:
        """Newest first, only those numbered above ``newer_than``; binding names where the route gives them."""
        ...

    def version(self, target: Target, version_id: str) -> WorkerVersion:
        """One version with its binding names and types (never values)."""
        ...

    def current_deployment(self, target: Target) -> WorkerDeployment | None:
        """The deployment serving traffic (None when the script has none)."""
        ...

    def stage_secrets(self, target: Target, changes: Mapping[str, SecretBody | None], message: str) -> StagedVersion:
        """PATCH .../versions/latest: one new UNDEPLOYED version holding ``changes``."""
        ...


class DestinationAdapter(Protocol):
    """One kind of destination (``Target.kind``): what the engine asks of it, whatever the kind.

    The planner and the applier never ask which kind they talk to; ``syncd.engine.destinations``
    routes each call by ``target.kind``. Adding a kind (Pages project secrets, a Hyperdrive origin
    password) is adding an adapter (and its client and emulator), not changing the engine.
    """

    def names(self, target: Target) -> set[str]:
        """The binding names that exist at ``target`` now (who owns a name is decided from this)."""
        ...

    def max_changes_per_call(self) -> int:
        """How many names one ``write`` may carry (a Worker's bulk call: 100; a store: any)."""
        ...

    def write(self, target: Target, changes: Mapping[str, SecretBody | None]) -> None:
        """Apply ``changes`` (``None`` deletes that name) in as few calls as the kind allows: one new
        Worker version per call for a script. Raises only ``syncd.errors`` types; a call that
        failed must leave nothing half applied that the state does not know of."""
        ...

    def can_stage(self, target: Target) -> bool:
        """Whether ``stage`` is possible at ``target`` (``on_undeployed = "stage"``)."""
        ...

    def stage(self, target: Target, changes: Mapping[str, SecretBody | None], message: str) -> StagedVersion:
        """Write ``changes`` into one new version that is NOT deployed (Worker scripts only)."""
        ...
