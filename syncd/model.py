"""Small frozen value types shared by every layer.

Anything that can hold a secret value (``SecretValue``, ``SecretData``, ``SecretBody``) masks it in
``repr``/``str`` and refuses pickling, so a value cannot reach a log line, an exception message or
a traceback by accident. Code that must send a value asks for it explicitly with ``reveal()``.
"""

from __future__ import annotations

import enum
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

MASK = "***"


class _Masked:
    """Base for holders of secret material: masked text forms, no pickling, no hashing."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({MASK})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} holds secret material and cannot be pickled")


class SecretValue(_Masked):
    """One secret string."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())


class SecretData(_Masked):
    """The key/value data of one Vault secret version. Values may be any JSON type."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def keys(self) -> list[str]:
        return sorted(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._data)

    def raw(self, key: str) -> Any:
        """The value as Vault stored it (str, number, bool, list, dict, None)."""
        return self._data[key]

    def text(self, key: str) -> SecretValue:
        """The value as text: strings as they are, any other JSON type JSON-encoded."""
        value = self._data[key]
        return SecretValue(value if isinstance(value, str) else json.dumps(value, sort_keys=True))

    def as_json(self) -> SecretValue:
        """The whole secret as one compact JSON document with sorted keys."""
        return SecretValue(json.dumps(self._data, sort_keys=True, separators=(",", ":")))

    def reveal(self) -> dict[str, Any]:
        return dict(self._data)


class SecretBody(_Masked):
    """A Cloudflare secret body as sent on the wire (it holds ``text``, ``key_base64`` or ``key_jwk``)."""

    __slots__ = ("_body",)

    def __init__(self, body: Mapping[str, Any]) -> None:
        self._body = dict(body)

    @property
    def name(self) -> str:
        return str(self._body["name"])

    @property
    def kind(self) -> BindingKind:
        return BindingKind(self._body["type"])

    def metadata(self) -> dict[str, Any]:
        """The non-secret part: name, type and, for secret_key, format, algorithm, usages."""
        return {k: v for k, v in self._body.items() if k not in ("text", "key_base64", "key_jwk")}

    def reveal(self) -> dict[str, Any]:
        return dict(self._body)

    def canonical_bytes(self) -> bytes:
        """A stable serialisation, the input of the keyed fingerprint."""
        return json.dumps(self._body, sort_keys=True, separators=(",", ":")).encode()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretBody):
            return NotImplemented
        return hmac.compare_digest(self.canonical_bytes(), other.canonical_bytes())


class BindingKind(enum.StrEnum):
    SECRET_TEXT = "secret_text"
    SECRET_KEY = "secret_key"


class KvVersion(enum.IntEnum):
    V1 = 1
    V2 = 2


@dataclass(frozen=True, order=True, slots=True)
class VaultSecretRef:
    """One Vault KV secret: mount (no slashes at the ends) and path inside the mount."""

    mount: str
    path: str

    def __str__(self) -> str:
        return f"{self.mount}/{self.path}"


class DestinationKind(enum.StrEnum):
    """Where a mapping's bindings live; each kind is one adapter behind ``engine.ports.DestinationAdapter``."""

    WORKER_SCRIPT = "worker_script"  # a Worker script's secret bindings (one new version per write)
    SECRETS_STORE = "secrets_store"  # an account's Secrets Store: one secret per binding, no version


@dataclass(frozen=True, order=True, slots=True)
class Target:
    """One destination: where a group of bindings lives and what one write call can change.

    ``WORKER_SCRIPT`` (the default): the script ``script``, optionally inside a Workers for Platforms
    dispatch namespace. ``SECRETS_STORE``: the account's store named (or with the id) ``script``;
    ``dispatch_namespace`` is None. One value type for every kind keeps the state's keys, the
    writer pool's per-destination gate and backoff, and metrics' labels the same for all of them.
    """

    account_id: str
    script: str
    dispatch_namespace: str | None = None
    kind: DestinationKind = DestinationKind.WORKER_SCRIPT

    @property
    def name(self) -> str:
        """The script's or the store's name."""
        return self.script

    def as_json(self) -> dict[str, str | None]:
        """The destination as ``plan --json`` and ``/status`` name it: its kind, account and name."""
        return {
            "kind": self.kind.value,
            "account_id": self.account_id,
            "name": self.name,
            "dispatch_namespace": self.dispatch_namespace,
        }

    def __str__(self) -> str:
        if self.kind is DestinationKind.SECRETS_STORE:
            return f"{self.account_id}/secrets_store/{self.script}"
        if self.dispatch_namespace:
            return f"{self.account_id}/{self.dispatch_namespace}/{self.script}"
        return f"{self.account_id}/{self.script}"


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """What a KV v2 metadata read says about the current version (no values).

    ``version`` is None for KV v1, which has no versions: its content must be read and compared.
    """

    ref: VaultSecretRef
    kv_version: KvVersion
    version: int | None
    created_time: datetime | None = None
    deleted: bool = False  # the current version is soft-deleted (deletion_time reached)
    destroyed: bool = False


@dataclass(frozen=True, slots=True)
class SecretVersion:
    """One read version of a Vault secret, values masked."""

    ref: VaultSecretRef
    kv_version: KvVersion
    version: int | None
    created_time: datetime | None
    data: SecretData


@dataclass(frozen=True, slots=True)
class StaticRoleCreds:
    """One read of a database static role (``GET {mount}/static-creds/{role}``), values masked.

    ``data`` holds what Vault answered (``username``, ``password`` and the role's timing fields);
    ``last_vault_rotation`` (Vault's RFC 3339 text, None when absent) is the version;
    ``ttl`` the seconds to the next rotation Vault announces, ``rotation_period`` its period;
    ``rotated_at`` is ``last_vault_rotation`` parsed, ``next_rotation`` (epoch seconds, None when
    unknown) that plus the period.
    """

    ref: VaultSecretRef  # (mount, "static-creds/{role}")
    data: SecretData
    last_vault_rotation: str | None
    ttl: float | None
    rotation_period: float | None
    rotated_at: datetime | None = None
    next_rotation: float | None = None


@dataclass(frozen=True, slots=True)
class RemoteSecret:
    """A secret binding as Cloudflare lists it (metadata only; values are write-only)."""

    name: str
    kind: str
