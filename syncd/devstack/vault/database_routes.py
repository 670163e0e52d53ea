"""HTTP shapes of the database engine's paths: ``config/``, ``static-roles/``, ``static-creds/``, ``rotate-role/``.

Verified in OpenBao's copy of Vault's database backend (``internal/builtin/logical/database/``)
and the Vault API docs (``api-docs/secret/databases``); hvac's ``secrets.database`` methods send
exactly these requests.

- ``POST config/{name}`` (create/update by existence): 204, or 200 with the warning
  ``Password found in connection_url, use a templated url to enable root rotation and prevent read
  access to password information.``; a missing ``plugin_name`` is 400 ``empty plugin name``.
  ``GET`` answers ``allowed_roles``, ``connection_details`` (without ``password``, a literal
  password in ``connection_url`` as ``xxxxx``), ``password_policy``, ``plugin_name``,
  ``plugin_version``, ``root_credentials_rotate_statements``; unknown is 404 ``{"errors":[]}``.
- ``POST static-roles/{name}``: 204. 400 texts: ``database name is a required field``,
  ``username is a required field to create a static account``, ``cannot update static account
  username`` (an update must repeat the username), ``rotation_period is required to create static
  accounts``, ``rotation_period must be 5 seconds or more``. A missing connection or a role outside
  ``allowed_roles`` is 500 (go-multierror text) and nothing is stored. ``GET`` answers
  ``credential_type``, ``db_name``, ``last_vault_rotation``, ``rotation_period`` (seconds),
  ``rotation_statements``, ``username``; unknown is 404 ``{"errors":[]}``. ``DELETE`` is 204.
- ``GET static-creds/{name}``: ``data = {last_vault_rotation, password, rotation_period, ttl,
  username}``, ``lease_id ""``, ``renewable false``, ``lease_duration 0`` (no lease: the response
  has no ``Secret``); unknown role 400 ``unknown role: <name>``.
- ``POST rotate-role/{name}``: 204; unknown 400 ``no static role found for role name``; a failed
  rotation 500 ``unable to finish rotating credentials; retries will continue in the background but
  it is also safe to retry manually: <error>``.
- ``LIST config``, ``LIST static-roles``: sorted names, 404 ``{"errors":[]}`` when none.

Emulator choice: ``rotation_schedule`` and ``rotation_window`` (Vault 1.15+) are answered 400
``rotation_schedule and rotation_window are not supported by the devstack emulator`` instead of
being ignored, so a test cannot believe it exercised schedule-based rotation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.database import (
    MIN_ROTATION_PERIOD,
    RETRY_AFTER_FAILURE,
    ConnectionConfig,
    DatabaseBackend,
    StaticRole,
    url_has_password,
)
from syncd.devstack.vault.routing import DELETE, LIST, READ, WRITE, Call, LogicalHandler
from syncd.devstack.vault.wire import (
    VaultError,
    envelope,
    error_response,
    json_response,
    multi_error,
    no_content,
    parse_bool,
    parse_duration,
    string_list,
)

NAME = r"(?P<name>\w(?:[\w\-.]*\w)?)"  # framework.GenericNameRegex
PASSWORD_IN_URL_WARNING = (
    "Password found in connection_url, use a templated url to enable root rotation and prevent read "
    "access to password information."
)
UNMODELLED_SCHEDULE = "rotation_schedule and rotation_window are not supported by the devstack emulator"
_RETRY_HINT = (
    "unable to finish rotating credentials; retries will continue in the background but it is also "
    "safe to retry manually: "
)
_CONFIG_FIELDS = frozenset(
    {
        "name",
        "plugin_name",
        "plugin_version",
        "allowed_roles",
        "verify_connection",
        "root_rotation_statements",
        "password_policy",
    }
)


def new_database_backend() -> DatabaseBackend:
    """A ``database`` mount's backend with its routes."""
    backend = DatabaseBackend()
    routes = _DatabaseRoutes(backend)
    add = backend.router.add
    add([LIST], r"config/?", routes.lazily(routes.list_connections))
    add([READ, WRITE, DELETE], "config/" + NAME, routes.lazily(routes.connection))
    add([LIST], r"static-roles/?", routes.lazily(routes.list_static_roles))
    add([READ, WRITE, DELETE], "static-roles/" + NAME, routes.lazily(routes.static_role))
    add([READ], "static-creds/" + NAME, routes.lazily(routes.static_creds))
    add([WRITE], "rotate-role/" + NAME, routes.lazily(routes.rotate_role))
    return backend


def _ok(data: Any, warnings: list[str] | None = None) -> Response:
    return json_response(200, envelope(data, warnings=warnings, mount_type="database"))


def _listing(names: list[str]) -> Response:
    return _ok({"keys": sorted(names)}) if names else error_response(404)


def _statements(value: Any) -> list[str]:
    """``TypeStringSlice``: a list, or one string."""
    if value is None or value == "":
        return []
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


class _DatabaseRoutes:
    def __init__(self, backend: DatabaseBackend) -> None:
        self.backend = backend

    def lazily(self, handler: LogicalHandler) -> Callable[[Call], Response]:
        """Rotate what is due before answering, so no request ever sees a password past its period."""

        def handle(call: Call) -> Response:
            self.backend.rotate_due(call.now)
            return handler(call)

        return handle

    # -- config/ ----------------------------------------------------------------------------

    def list_connections(self, call: Call) -> Response:
        return _listing(list(self.backend.connections))

    def connection(self, call: Call) -> Response:
        name = call.params["name"]
        if call.operation == DELETE:
            self.backend.connections.pop(name, None)
            return no_content()
        if call.operation == READ:
            found = self.backend.connections.get(name)
            return error_response(404) if found is None else _ok(found.describe())
        return self._write_connection(name, call)

    def _write_connection(self, name: str, call: Call) -> Response:
        existing = self.backend.connections.get(name)
        create = existing is None
        base = existing or ConnectionConfig()

        def given(name: str, default: Any) -> Any:
            return call.get(name) if name in call.data else default

        config = ConnectionConfig(
            plugin_name=str(given("plugin_name", base.plugin_name) or ""),
            plugin_version=str(given("plugin_version", base.plugin_version) or ""),
            allowed_roles=string_list(given("allowed_roles", base.allowed_roles)),
            root_rotation_statements=_statements(given("root_rotation_statements", base.root_rotation_statements)),
            password_policy=str(given("password_policy", base.password_policy) or ""),
        )
        if not config.plugin_name:
            raise VaultError(400, "empty plugin name")
        parse_bool(call.get("verify_connection"), True)  # accepted; there is no database to verify
        details = {k: v for k, v in call.data.items() if k not in _CONFIG_FIELDS}
        config.connection_details = details if create else {**base.connection_details, **details}
        self.backend.connections[name] = config
        url = config.connection_details.get("connection_url")
        if isinstance(url, str) and url_has_password(url):
            return _ok(None, [PASSWORD_IN_URL_WARNING])
        return no_content()

    # -- static-roles/ ----------------------------------------------------------------------

    def list_static_roles(self, call: Call) -> Response:
        return _listing(list(self.backend.static_roles))

    def static_role(self, call: Call) -> Response:
        name = call.params["name"]
        if call.operation == DELETE:
            self.backend.static_roles.pop(name, None)
            return no_content()
        if call.operation == READ:
            found = self.backend.static_roles.get(name)
            return error_response(404) if found is None else _ok(found.describe())
        return self._write_static_role(name, call)

    def _write_static_role(self, name: str, call: Call) -> Response:
        if "rotation_schedule" in call.data or "rotation_window" in call.data:
            raise VaultError(400, UNMODELLED_SCHEDULE)
        existing = self.backend.static_roles.get(name)
        db_name = str(call.get("db_name") or "") if "db_name" in call.data else (existing.db_name if existing else "")
        if not db_name:
            raise VaultError(400, "database name is a required field")
        username = str(call.get("username") or "")
        if not username and existing is None:
            raise VaultError(400, "username is a required field to create a static account")
        if existing is not None and existing.username != username:
            raise VaultError(400, "cannot update static account username")
        if "rotation_period" in call.data:
            period = parse_duration(call.get("rotation_period"), "rotation_period")
            if period < MIN_ROTATION_PERIOD:
                raise VaultError(400, f"rotation_period must be {MIN_ROTATION_PERIOD} seconds or more")
        elif existing is None:
            raise VaultError(400, "rotation_period is required to create static accounts")
        else:
            period = existing.rotation_period
        statements = _statements(call.get("rotation_statements"))
        if existing is None:
            role = StaticRole(name, db_name, username, period, statements)
            self.backend.rotate(role, call.now)  # Vault rotates at creation to learn the password
            self.backend.static_roles[name] = role
            return no_content()
        existing.db_name, existing.rotation_period = db_name, period
        if "rotation_statements" in call.data:
            existing.rotation_statements = statements
        return no_content()

    # -- static-creds/, rotate-role/ --------------------------------------------------------

    def _role(self, call: Call, unknown: str) -> StaticRole:
        role = self.backend.static_roles.get(call.params["name"])
        if role is None:
            raise VaultError(400, unknown)
        return role

    def static_creds(self, call: Call) -> Response:
        role = self._role(call, f"unknown role: {call.params['name']}")
        problem = self.backend.connection_problem(role)
        if problem is not None:
            raise VaultError(500, multi_error(problem))
        return _ok(role.credentials(call.now))

    def rotate_role(self, call: Call) -> Response:
        role = self._role(call, "no static role found for role name")
        problem = self.backend.connection_problem(role)
        if problem is not None:
            role.retry_at = call.now + RETRY_AFTER_FAILURE
            raise VaultError(500, multi_error(_RETRY_HINT + problem))
        self.backend.rotate(role, call.now)
        return no_content()
