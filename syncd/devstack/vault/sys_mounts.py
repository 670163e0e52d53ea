"""``sys/mounts``, ``sys/auth`` and ``sys/internal/ui/mounts``: enabling engines and auth methods.

``type: "kv-v2"`` is stored as ``kv`` with ``options.version = "2"`` (Vault does this rewrite);
``kv`` without a version is KV v1; ``database`` mounts the database engine's static roles
(``syncd.devstack.vault.database``), described with ``options: null`` and an empty description.
Listing responses carry the mounts both in ``data`` and at the top level, like Vault's
``handleLogicalWithInjector`` for these legacy endpoints.

``sys/internal/ui/mounts/<path>`` needs a valid token that has some capability inside the mount;
otherwise (or when no mount matches) it answers 403 with the preflight message Vault uses
(``preflight capability check returned 403, please ensure client's policies grant access to
path "<path>/"``; wording from memory of ``logical_system.go``, UNVERIFIED).
UNVERIFIED too: ``plugin not found in the catalog: <type>`` for unknown types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.approle import AppRoleBackend
from syncd.devstack.vault.database_routes import new_database_backend
from syncd.devstack.vault.jwt_auth import JwtBackend
from syncd.devstack.vault.kubernetes import KubernetesBackend
from syncd.devstack.vault.kv_v1 import KvV1Backend
from syncd.devstack.vault.kv_v2 import KvV2Backend
from syncd.devstack.vault.routing import DELETE, READ, WRITE, Backend, Call, LogicalRouter
from syncd.devstack.vault.state import Mount, VaultState
from syncd.devstack.vault.wire import (
    PERMISSION_DENIED,
    VaultError,
    envelope,
    json_response,
    multi_error,
    no_content,
)

AUTH_TYPES: dict[str, Callable[[VaultState], Backend]] = {
    "approle": AppRoleBackend,
    "jwt": JwtBackend,
    "kubernetes": KubernetesBackend,
}
PROTECTED_SECRET_PATHS = ("sys/", "auth/", "cubbyhole/", "identity/")


def normalize_mount_path(path: str) -> str:
    return path.strip("/") + "/"


def enable_secrets_engine(
    state: VaultState, path: str, engine_type: str, options: dict[str, Any] | None = None, description: str = ""
) -> Mount:
    path = normalize_mount_path(path)
    options = {str(k): str(v) for k, v in (options or {}).items()} or None
    if engine_type == "kv-v2":
        engine_type, options = "kv", {**(options or {}), "version": "2"}
    if engine_type not in ("kv", "database"):
        raise VaultError(400, f"plugin not found in the catalog: {engine_type}")
    _check_free(path, state.secret_mounts, PROTECTED_SECRET_PATHS)
    backend: Backend
    if engine_type == "database":
        backend = new_database_backend()
    else:
        backend = KvV2Backend() if (options or {}).get("version", "1") == "2" else KvV1Backend()
        description = description or "key/value secret storage"
    mount = Mount(path, engine_type, backend, description, options, accessor=state.new_accessor(engine_type))
    state.secret_mounts[path] = mount
    return mount


def enable_auth_method(state: VaultState, path: str, method_type: str, description: str = "") -> Mount:
    path = normalize_mount_path(path)
    factory = AUTH_TYPES.get(method_type)
    if factory is None:
        raise VaultError(400, f"plugin not found in the catalog: {method_type}")
    _check_free(path, state.auth_mounts, ("token/",))
    mount = Mount(
        path,
        method_type,
        factory(state),
        description,
        None,
        {"token_type": "default-service"},
        accessor=state.new_accessor(f"auth_{method_type}"),
    )
    state.auth_mounts[path] = mount
    return mount


def _check_free(path: str, mounts: dict[str, Mount], reserved: tuple[str, ...]) -> None:
    for taken in list(mounts) + list(reserved):
        if path.startswith(taken) or taken.startswith(path):
            raise VaultError(400, f"path is already in use at {taken}")


def _listing(mounts: dict[str, Any]) -> Response:
    body = envelope(mounts)
    merged = {**body["data"], **body}
    return json_response(200, merged)


def _system_entries(state: VaultState) -> dict[str, Any]:
    return {
        "sys/": {
            "accessor": "system_00000000",
            "config": {
                "default_lease_ttl": 0,
                "force_no_cache": False,
                "max_lease_ttl": 0,
                "passthrough_request_headers": ["Accept"],
            },
            "description": "system endpoints used for control, policy and debugging",
            "external_entropy_access": False,
            "local": False,
            "options": None,
            "plugin_version": "",
            "running_plugin_version": "v0.0.0+builtin.vault",
            "running_sha256": "",
            "seal_wrap": True,
            "type": "system",
            "uuid": state.cluster_id,
        }
    }


def register_mount_routes(router: LogicalRouter, state: VaultState) -> None:
    def list_mounts(call: Call) -> Response:
        entries = {path: mount.describe() for path, mount in state.secret_mounts.items()}
        entries.update(_system_entries(state))
        return _listing(entries)

    def mount(call: Call) -> Response:
        path = normalize_mount_path(call.params["path"])
        if call.operation == READ:
            found = state.secret_mounts.get(path)
            if found is None:
                raise VaultError(400, f"No secret engine mount at {path}")
            return json_response(200, envelope(found.describe()))
        if call.operation == DELETE:
            state.secret_mounts.pop(path, None)
            return no_content()
        options = call.get("options") or {}
        enable_secrets_engine(state, path, str(call.get("type") or ""), options, str(call.get("description") or ""))
        return no_content()

    def list_auth(call: Call) -> Response:
        entries = {path: mount.describe() for path, mount in state.auth_mounts.items()}
        entries["token/"] = {
            "accessor": "auth_token_00000000",
            "config": {
                "default_lease_ttl": 0,
                "force_no_cache": False,
                "max_lease_ttl": 0,
                "token_type": "default-service",
            },
            "description": "token based credentials",
            "external_entropy_access": False,
            "local": False,
            "options": None,
            "plugin_version": "",
            "running_plugin_version": "v0.0.0+builtin.vault",
            "running_sha256": "",
            "seal_wrap": False,
            "type": "token",
            "uuid": state.cluster_id,
        }
        return _listing(entries)

    def auth_method(call: Call) -> Response:
        path = normalize_mount_path(call.params["path"])
        if call.operation == DELETE:
            state.auth_mounts.pop(path, None)
            return no_content()
        enable_auth_method(state, path, str(call.get("type") or ""), str(call.get("description") or ""))
        return no_content()

    def ui_mount(call: Call) -> Response:
        path = normalize_mount_path(call.params["path"])
        denied = VaultError(
            403,
            f'preflight capability check returned 403, please ensure client\'s policies grant access to path "{path}"',
        )
        found = next((m for p, m in state.secret_mounts.items() if path.startswith(p)), None)
        if found is None or call.token is None:
            raise denied
        if not state.acl_for(call.token).touches_prefix(found.path):
            raise denied
        described = found.describe()
        described["path"] = found.path
        return json_response(200, envelope(described))

    def ui_mounts(call: Call) -> Response:
        return json_response(200, envelope({"auth": {}, "secret": {}}))

    router.add([READ], "sys/mounts", list_mounts)
    router.add([READ, WRITE, DELETE], "sys/mounts/(?P<path>.+)", mount)
    router.add([READ], "sys/auth", list_auth)
    router.add([WRITE, DELETE], "sys/auth/(?P<path>.+)", auth_method, sudo=True)
    router.add([READ], "sys/internal/ui/mounts", ui_mounts, unauthenticated=True)
    router.add([READ], "sys/internal/ui/mounts/(?P<path>.+)", ui_mount, unauthenticated=True)


def permission_denied() -> VaultError:
    return VaultError(403, multi_error(PERMISSION_DENIED))
