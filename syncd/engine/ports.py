"""What the engine needs from the clients layer, as protocols.

``syncd.clients.vault.VaultReader``, ``syncd.clients.cloudflare.CloudflareClient`` and
``syncd.clients.secrets_store.SecretsStoreClient`` implement them; tests may pass fakes. Every
method raises only ``syncd.errors`` types.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from syncd.config import MappingSettings
from syncd.errors import SyncdError
from syncd.model import (
    KvVersion,
    RemoteSecret,
    SecretBody,
    SecretValue,
    SecretVersion,
    StaticRoleCreds,
    Target,
    VaultSecretRef,
    VersionInfo,
)
from syncd.model_store import NewStoreSecret, SecretsStore, StoreQuota, StoreSecret
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


class StoreSecrets(Protocol):
    """An account's Secrets Store (``syncd.clients.secrets_store.SecretsStoreClient`` implements it)."""

    def find_store(self, account_id: str, name_or_id: str) -> SecretsStore:
        """The store with that id, else that name; ``SecretsStoreNotFound`` if none."""
        ...

    def list_secrets(self, account_id: str, store_id: str) -> list[StoreSecret]:
        """Every live secret's metadata (all pages; rows with status ``deleted`` left out)."""
        ...

    def create_secrets(self, account_id: str, store_id: str, secrets: Sequence[NewStoreSecret]) -> list[StoreSecret]:
        """One ``POST`` for all of ``secrets`` (all or nothing)."""
        ...

    def update_secret(
        self,
        account_id: str,
        store_id: str,
        secret_id: str,
        *,
        value: SecretValue | None = None,
        scopes: Sequence[str] | None = None,
        comment: str | None = None,
    ) -> StoreSecret:
        """``PATCH`` the fields given, by id."""
        ...

    def delete_secret(self, account_id: str, store_id: str, secret_id: str) -> None:
        """``DELETE`` by id; one already gone counts as deleted."""
        ...

    def quota(self, account_id: str) -> StoreQuota:
        """``GET /quota``: the account's store secrets quota and usage."""
        ...


class DestinationAdapter(Protocol):
    """One kind of destination (``Target.kind``): what the engine asks of it, whatever the kind.

    The planner and the applier never ask which kind they talk to; ``syncd.engine.destinations``
    routes each call by ``target.kind``. Adding a kind (Pages project secrets, a Hyperdrive origin
    password) is adding an adapter (and its client and emulator), not changing the engine.
    """

    def names(self, target: Target) -> set[str]:
        """The binding names that exist at ``target`` now and are not syncd's: a desired name among
        them is pre-existing, not owned (who owns a name is decided from this). A Worker script:
        every secret name (nothing marks a script secret as syncd's). A store: the secrets that
        carry no mark of syncd's."""
        ...

    def prepare(self, target: Target, mapping: MappingSettings, body: SecretBody) -> SecretBody:
        """The body as this kind keeps it, from the mapping's target settings (a store secret adds
        its scopes and syncd's mark); it is what is fingerprinted and written. A script: as it is."""
        ...

    def admit(
        self, target: Target, new: Mapping[str, Collection[str]], adopting: Collection[str]
    ) -> dict[str, SyncdError]:
        """Before planning: which mappings cannot write their names that have no record yet
        (``new``: mapping -> names; called after ``names``), mapping -> why; those mappings fail this
        cycle and nothing of theirs is written. ``adopting``: mappings allowed to take a pre-existing
        name over as syncd's own. A script admits all (``initial_sync`` decides on pre-existing
        names); a store refuses a name it holds unowned (unless adopted) and creations past its quota."""
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
