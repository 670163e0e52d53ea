"""In-memory fakes of the engine's ports, counting every call, and a settings builder.

``FakeSource`` is a Vault with KV v2 versions (mount ``secret``) and KV v1 (mount ``kv``); a KV v1
``current_version`` is not a request and is not logged, as with the real reader. ``FakeWorkers``
keeps each script's secrets (values included, for assertions) and can be told to refuse calls per
target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from syncd.config import Settings
from syncd.errors import (
    CloudflareNotDeployed,
    CloudflareNotFound,
    SyncdError,
    VaultSecretDeleted,
    VaultSecretNotFound,
)
from syncd.model import (
    KvVersion,
    RemoteSecret,
    SecretBody,
    SecretData,
    SecretVersion,
    StaticRoleCreds,
    Target,
    VaultSecretRef,
    VersionInfo,
)

ACCOUNT = "0123456789abcdef0123456789abcdef"


def target(script: str) -> Target:
    return Target(ACCOUNT, script)


def make_settings(
    mappings: Sequence[Mapping[str, Any]],
    *,
    concurrency: int = 4,
    account: str = ACCOUNT,
    cloudflare: Mapping[str, Any] | None = None,
    **sync: Any,
) -> Settings:
    """``cloudflare``: extra ``[cloudflare]`` keys (e.g. ``write_concurrency``)."""
    return Settings.model_validate(
        {
            "vault": {"address": "http://vault.invalid", "concurrency": concurrency},
            "cloudflare": {"account_id": account, "auth": {"api_token": {"env": "CF_TOKEN"}}, **(cloudflare or {})},
            "sync": sync,
            "mapping": list(mappings),
        }
    )


def keys_mapping(
    name: str, path: str, script: str, keys: Mapping[str, str], *, mount: str = "secret"
) -> dict[str, Any]:
    return {
        "name": name,
        "vault": {"mount": mount, "path": path},
        "target": {"script": script},
        "secret_text": {"keys": dict(keys)},
    }


@dataclass
class _Secret:
    versions: list[dict[str, Any]] = field(default_factory=list)
    deleted: set[int] = field(default_factory=set)


class FakeSource:
    """Implements ``SecretSource``. ``calls`` logs (operation, "mount/path" or mount)."""

    def __init__(self) -> None:
        self.mounts: dict[str, KvVersion] = {"secret": KvVersion.V2, "kv": KvVersion.V1}
        self.secrets: dict[VaultSecretRef, _Secret] = {}
        self.errors: dict[VaultSecretRef, SyncdError] = {}
        self.calls: list[tuple[str, str]] = []
        self._known_mounts: set[str] = set()
        self.before_call: Callable[[str, str], None] = lambda op, where: None
        # Database static roles (mount "database"): role -> (username, password, rotated at, period).
        self.roles: dict[str, tuple[str, str, float, float]] = {}
        self.now: Callable[[], float] = lambda: 1_700_000_000.0

    # --- test controls ---
    def put(self, path: str, data: Mapping[str, Any], *, mount: str = "secret") -> int:
        secret = self.secrets.setdefault(VaultSecretRef(mount, path), _Secret())
        if self.mounts[mount] is KvVersion.V1:
            secret.versions[:] = [dict(data)]
        else:
            secret.versions.append(dict(data))
        return len(secret.versions)

    def delete_current(self, path: str, *, mount: str = "secret") -> None:
        secret = self.secrets[VaultSecretRef(mount, path)]
        secret.deleted.add(len(secret.versions))

    def put_role(self, role: str, username: str, password: str, *, period: float = 3600.0) -> None:
        """A static role (mount ``database``) rotated now to ``password``."""
        self.roles[role] = (username, password, self.now(), period)

    def remove(self, path: str, *, mount: str = "secret") -> None:
        del self.secrets[VaultSecretRef(mount, path)]

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    # --- SecretSource ---
    def _log(self, operation: str, where: str) -> None:
        self.before_call(operation, where)
        self.calls.append((operation, where))

    def kv_version(self, mount: str) -> KvVersion:
        """Asked once per mount, then cached, as the port says the real reader does."""
        if mount not in self._known_mounts:
            self._log("kv_version", mount)
            self._known_mounts.add(mount)
        return self.mounts[mount]

    def _secret(self, ref: VaultSecretRef) -> _Secret:
        if ref in self.errors:
            raise self.errors[ref]
        secret = self.secrets.get(ref)
        if secret is None or not secret.versions:
            raise VaultSecretNotFound(f"no secret at {ref}", path=str(ref), status=404)
        return secret

    def current_version(self, ref: VaultSecretRef, kv_version: KvVersion) -> VersionInfo:
        if kv_version is KvVersion.V1:
            return VersionInfo(ref, kv_version, None)
        self._log("metadata", str(ref))
        secret = self._secret(ref)
        current = len(secret.versions)
        created = datetime(2024, 1, 1, tzinfo=UTC)
        return VersionInfo(ref, kv_version, current, created, deleted=current in secret.deleted)

    def read(self, ref: VaultSecretRef, kv_version: KvVersion, version: int | None) -> SecretVersion:
        self._log("read", str(ref))
        secret = self._secret(ref)
        number = len(secret.versions) if version is None else version
        if number in secret.deleted:
            raise VaultSecretDeleted(f"version {number} of {ref} is deleted", path=str(ref))
        created = datetime(2024, 1, 1, tzinfo=UTC)
        data = SecretData(secret.versions[number - 1])
        return SecretVersion(ref, kv_version, None if kv_version is KvVersion.V1 else number, created, data)

    def static_creds(self, mount: str, role: str) -> StaticRoleCreds:
        """``calls`` logs ("static_creds", "database/static-creds/ROLE")."""
        self._log("static_creds", f"{mount}/static-creds/{role}")
        return _static_creds(self, mount, role)


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _static_creds(source: FakeSource, mount: str, role: str) -> StaticRoleCreds:
    ref = VaultSecretRef(mount, f"static-creds/{role}")
    if ref in source.errors:
        raise source.errors[ref]
    if mount != "database" or role not in source.roles:
        raise VaultSecretNotFound(f"Vault static_creds_read {ref}: no such static role", path=str(ref), status=400)
    username, password, rotated, period = source.roles[role]
    ttl = max(0.0, float(round(rotated + period - source.now())))
    data = {
        "username": username,
        "password": password,
        "last_vault_rotation": _rfc3339(rotated),
        "rotation_period": period,
        "ttl": ttl,
    }
    return StaticRoleCreds(
        ref, SecretData(data), _rfc3339(rotated), ttl, period, datetime.fromtimestamp(rotated, UTC), rotated + period
    )


@dataclass(frozen=True)
class Call:
    operation: str  # "list" | "bulk" | "put" | "delete"
    target: Target
    names: tuple[str, ...]


class FakeWorkers:
    """Implements ``WorkerSecrets``. Scripts must exist (``add_script``) or calls raise 10007."""

    def __init__(self) -> None:
        self.scripts: dict[Target, dict[str, SecretBody]] = {}
        self.calls: list[Call] = []
        self.refuse: dict[Target, SyncdError] = {}  # writes to that target raise this

    def add_script(self, script: str, **existing: str) -> Target:
        where = target(script)
        self.scripts[where] = {
            name: SecretBody({"name": name, "type": "secret_text", "text": text}) for name, text in existing.items()
        }
        return where

    def not_deployed(self, where: Target) -> None:
        self.refuse[where] = CloudflareNotDeployed("latest version not deployed", status=400, code=10215)

    def texts(self, where: Target) -> dict[str, str]:
        return {name: str(body.reveal().get("text")) for name, body in self.scripts[where].items()}

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.operation != "list"]

    def _script(self, where: Target) -> dict[str, SecretBody]:
        if where not in self.scripts:
            raise CloudflareNotFound("This Worker does not exist on your account.", status=404, code=10007)
        return self.scripts[where]

    def list_secrets(self, target: Target) -> Sequence[RemoteSecret]:
        self.calls.append(Call("list", target, ()))
        return [RemoteSecret(name, body.kind.value) for name, body in sorted(self._script(target).items())]

    def bulk_update(self, target: Target, changes: Mapping[str, SecretBody | None]) -> None:
        assert 0 < len(changes) <= 100, len(changes)
        self.calls.append(Call("bulk", target, tuple(sorted(changes))))
        script = self._script(target)
        if target in self.refuse:
            raise self.refuse[target]
        for name, body in changes.items():
            if body is None:
                script.pop(name, None)
            else:
                script[name] = body

    def put_secret(self, target: Target, body: SecretBody) -> None:
        self.calls.append(Call("put", target, (body.name,)))
        script = self._script(target)
        if target in self.refuse:
            raise self.refuse[target]
        script[body.name] = body

    def delete_secret(self, target: Target, name: str) -> None:
        self.calls.append(Call("delete", target, (name,)))
        script = self._script(target)
        if target in self.refuse:
            raise self.refuse[target]
        script.pop(name, None)
