"""The database secrets engine's static roles: connections, static roles, their passwords, rotation.

No database is contacted: a connection config is stored as given, and "rotating" a static role
means generating a new password and remembering when. Behaviour follows Vault's database backend
as kept by OpenBao (``internal/builtin/logical/database/``: ``path_roles.go``,
``path_creds_create.go``, ``path_rotate_credentials.go``, ``rotation.go``,
``path_config_connection.go``; OpenBao forked Vault 1.14 and kept its HTTP layer) and the Vault
API docs (``website/content/api-docs/secret/databases/index.mdx``):

- Creating a static role rotates its password at once ("Vault must do this in order to know the
  password"); updating one does not. ``rotation_period`` (seconds or a duration string) must be at
  least 5 s (``defaultQueueTickSeconds``).
- A role is due when ``last_vault_rotation + rotation_period`` has passed on the emulator's clock.
  Vault's rotation queue checks every 5 s and records the time it rotated as the new
  ``last_vault_rotation``; here a due role rotates when the :class:`RotationTicker` of
  ``database_rotation`` next looks (without any request, so without an audit entry) or, at the
  latest, when a request touches the mount, and the time it rotated is the emulator's ``now``.
- A scheduled rotation that fails (its connection was deleted, or the role is no longer in the
  connection's ``allowed_roles``) keeps the old password and is retried 10 s later, as Vault does.
- Passwords follow Vault's default policy: 20 characters with at least one upper-case letter, one
  lower-case letter, one digit and one dash. ``password_policy`` is stored but not applied.

Emulator limits: dynamic roles (``roles/``, ``creds/``), ``rotate-root`` and ``reset`` are not
modelled; ``rotation_schedule`` / ``rotation_window`` (Vault 1.15+) are refused with 400 rather
than silently ignored (see ``database_routes``); any ``plugin_name`` is accepted.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from syncd.devstack.vault.routing import Call, LogicalRouter
from syncd.devstack.vault.wire import VaultError, multi_error, rfc3339

MIN_ROTATION_PERIOD = 5  # seconds: Vault's defaultQueueTickSeconds
RETRY_AFTER_FAILURE = 10  # seconds: rotation.go pushes a failed item back 10 s later
PASSWORD_LENGTH = 20
_PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-"
_REQUIRED_CLASSES = (string.ascii_uppercase, string.ascii_lowercase, string.digits, "-")
# Go's url.Parse accepts these in userinfo (validUserinfo); Redacted() hides the password then.
_URL_WITH_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9\-._~!$&'()*+,;=%]*:)([^@/]*)(@.*)$")
_USERINFO_PASSWORD = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=%:]*$")


def generate_password() -> str:
    """A password under Vault's default policy (20 chars; upper, lower, digit and dash at least once)."""
    while True:
        candidate = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
        if all(any(char in group for char in candidate) for group in _REQUIRED_CLASSES):
            return candidate


def fingerprint(value: str) -> str:
    """What admin views show instead of a password."""
    return hashlib.sha256(value.encode()).hexdigest()


def glob_match(pattern: str, name: str) -> bool:
    """go-glob's match (``strutil.StrListContainsGlob``): ``*`` is the only wildcard."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, name) is not None


def url_has_password(url: str) -> bool:
    """Go's ``url.Parse`` succeeds and the URL carries a password (templates like ``{{password}}`` do not parse)."""
    found = _URL_WITH_PASSWORD.match(url)
    return found is not None and _USERINFO_PASSWORD.match(found.group(2)) is not None


def redacted_url(url: str) -> str:
    """Go's ``url.URL.Redacted()``: a parsable URL's password becomes ``xxxxx``; templates stay as they are."""
    found = _URL_WITH_PASSWORD.match(url)
    if found is None or not url_has_password(url):
        return url
    return found.group(1) + "xxxxx" + found.group(3)


@dataclass
class ConnectionConfig:
    """``config/{name}``: what ``DatabaseConfig`` stores (connection details as given)."""

    plugin_name: str = ""
    plugin_version: str = ""
    allowed_roles: list[str] = field(default_factory=list)
    root_rotation_statements: list[str] = field(default_factory=list)
    password_policy: str = ""
    connection_details: dict[str, Any] = field(default_factory=dict)

    def allows(self, role_name: str) -> bool:
        return "*" in self.allowed_roles or any(glob_match(p, role_name) for p in self.allowed_roles)

    def describe(self) -> dict[str, Any]:
        """The read view: no ``password`` / ``private_key``, a password in ``connection_url`` redacted."""
        details = {k: v for k, v in self.connection_details.items() if k not in ("password", "private_key")}
        if isinstance(details.get("connection_url"), str):
            details["connection_url"] = redacted_url(details["connection_url"])
        return {
            "allowed_roles": list(self.allowed_roles),
            "connection_details": details,
            "password_policy": self.password_policy,
            "plugin_name": self.plugin_name,
            "plugin_version": self.plugin_version,
            "root_credentials_rotate_statements": list(self.root_rotation_statements),
        }


@dataclass
class StaticRole:
    """``static-roles/{name}``: one database user whose password the engine owns."""

    name: str
    db_name: str
    username: str
    rotation_period: int
    rotation_statements: list[str] = field(default_factory=list)
    password: str = field(default="", repr=False)
    last_vault_rotation: float | None = None
    rotations: int = 0
    retry_at: float | None = None  # a failed scheduled rotation is tried again then

    def next_rotation(self) -> float:
        return (self.last_vault_rotation or 0.0) + self.rotation_period

    def due(self, now: float) -> bool:
        if self.retry_at is not None:
            return now >= self.retry_at
        return now >= self.next_rotation()

    def ttl(self, now: float) -> int:
        """``CredentialTTL``: seconds to the next rotation, rounded half away from zero, never negative."""
        left = self.next_rotation() - now
        return max(0, int(left + 0.5)) if left > 0 else 0

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "credential_type": "password",
            "db_name": self.db_name,
            "rotation_period": self.rotation_period,
            "rotation_statements": list(self.rotation_statements),
            "username": self.username,
        }
        if self.last_vault_rotation is not None:
            data["last_vault_rotation"] = rfc3339(self.last_vault_rotation)
        return data

    def credentials(self, now: float) -> dict[str, Any]:
        return {
            "last_vault_rotation": rfc3339(self.last_vault_rotation or 0.0),
            "password": self.password,
            "rotation_period": self.rotation_period,
            "ttl": self.ttl(now),
            "username": self.username,
        }


class DatabaseBackend:
    """State and rotation of one ``database`` mount; HTTP shapes live in ``database_routes``."""

    mount_type = "database"

    def __init__(self) -> None:
        self.connections: dict[str, ConnectionConfig] = {}
        self.static_roles: dict[str, StaticRole] = {}
        self.router = LogicalRouter()  # filled by database_routes.new_database_backend

    def exists(self, call: Call) -> bool | None:
        section, _, name = call.path.partition("/")
        if section == "config":
            return name in self.connections
        if section == "static-roles":
            return name in self.static_roles
        return None

    def connection_problem(self, role: StaticRole) -> str | None:
        """Why the role cannot use its connection (the Go error text), or None."""
        config = self.connections.get(role.db_name)
        if config is None:
            return f'failed to find entry for connection with name: "{role.db_name}"'
        if not config.allows(role.name):
            return f'"{role.name}" is not an allowed role'
        return None

    def rotate(self, role: StaticRole, now: float) -> None:
        """``setStaticAccount``: a new password, now; raises 500 (keeping the old one) as Vault would."""
        problem = self.connection_problem(role)
        if problem is not None:
            raise VaultError(500, multi_error(problem))
        role.password = generate_password()
        role.last_vault_rotation = now
        role.rotations += 1
        role.retry_at = None

    def rotate_due(self, now: float) -> list[str]:
        """Rotate every role whose time has come (the rotation queue); returns the names rotated."""
        rotated = []
        for role in list(self.static_roles.values()):
            if not role.due(now):
                continue
            try:
                self.rotate(role, now)
            except VaultError:
                role.retry_at = now + RETRY_AFTER_FAILURE
                continue
            rotated.append(role.name)
        return rotated
