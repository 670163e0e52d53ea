"""Scheduled static-role rotation without any request, its admin routes, and the devstack seed.

Vault rotates static-role passwords from a queue it checks every 5 s, with no request and so no
audit entry. :class:`RotationTicker` plays that queue on the emulator's clock: ``tick()`` rotates
every role of every ``database`` mount whose ``last_vault_rotation + rotation_period`` has passed,
and a background thread calls it every ``interval`` seconds of real time (0.1 s by default, so a
test that advances a fake clock sees the rotation promptly; ``None`` leaves it to ``tick()``, the
admin route and the lazy check each database request makes).

Admin routes (outside ``/v1``, never audited):

- ``POST /__devstack/database/tick``: run the scheduler now -> ``{"rotated": [{"mount", "role"}]}``.
- ``POST /__devstack/database/rotate`` ``{"mount": "database", "role": NAME}``: rotate one role as
  the scheduler would (no request, no audit entry) -> ``{"last_vault_rotation"}``; 404 unknown,
  409 when its connection is missing or does not allow it.
- ``GET /__devstack/database/static-roles``: every role with ``mount``, ``role``, ``username``,
  ``last_vault_rotation``, ``next_rotation`` (epoch seconds), ``rotations`` and
  ``password_sha256`` (a fingerprint, never the password; read the password with ``static-creds``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from syncd.devstack.httpkit import ADMIN_PREFIX, Request, Response, Router
from syncd.devstack.vault.database import DatabaseBackend, StaticRole, fingerprint
from syncd.devstack.vault.routing import WRITE, Call, RouteNotFound
from syncd.devstack.vault.state import VaultState
from syncd.devstack.vault.sys_mounts import enable_secrets_engine
from syncd.devstack.vault.wire import VaultError, parse_duration

DEFAULT_TICK_INTERVAL = 0.1
SEED_MOUNT = "database"
SEED_CONNECTION = "devdb"


def database_mounts(state: VaultState) -> Iterator[tuple[str, DatabaseBackend]]:
    for path, mount in list(state.secret_mounts.items()):
        if isinstance(mount.backend, DatabaseBackend):
            yield path, mount.backend


class RotationTicker:
    """Rotates due static roles on the emulator's clock, from its own thread or when called."""

    def __init__(self, state: VaultState, interval: float | None = DEFAULT_TICK_INTERVAL) -> None:
        self.state = state
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> list[tuple[str, str]]:
        """Rotate everything due now; the (mount path, role) pairs rotated."""
        with self.state.lock:
            now = self.state.clock.now()
            return [(path, name) for path, backend in database_mounts(self.state) for name in backend.rotate_due(now)]

    def start(self) -> None:
        if self.interval is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="vault-database-rotation", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            self.tick()


def seed_static_role(state: VaultState, role: str, rotation_period: str | int = "1h") -> StaticRole:
    """Mount ``database/`` (if absent), a connection ``devdb`` allowing every role, and static role ``role``.

    The connection points nowhere (``127.0.0.1:5432`` is never dialled); the role's database user
    is named like the role. Raises ``VaultError`` for a bad name or period, like the real path.
    """
    with state.lock:
        mount = state.secret_mounts.get(SEED_MOUNT + "/")
        if mount is None:
            mount = enable_secrets_engine(state, SEED_MOUNT, "database")
        backend = mount.backend
        if not isinstance(backend, DatabaseBackend):
            raise VaultError(400, f"{SEED_MOUNT}/ is already mounted as {mount.type}")
        period = parse_duration(rotation_period, "rotation_period")
        data: dict[str, Any] = {
            "plugin_name": "postgresql-database-plugin",
            "allowed_roles": ["*"],
            "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:5432/app",
            "username": "vault",
        }
        _call_route(state, backend, f"config/{SEED_CONNECTION}", data)
        _call_route(
            state,
            backend,
            f"static-roles/{role}",
            {"db_name": SEED_CONNECTION, "username": role, "rotation_period": period},
        )
        return backend.static_roles[role]


def parse_role_spec(spec: str) -> tuple[str, str]:
    """``NAME[:PERIOD]`` (``syncd devstack --db-role``): the role and its rotation period (default ``1h``)."""
    name, _, period = spec.partition(":")
    if not name:
        raise ValueError(f"--db-role {spec!r}: expected NAME[:PERIOD], e.g. app:1h")
    return name, period or "1h"


def _call_route(state: VaultState, backend: DatabaseBackend, path: str, data: dict[str, Any]) -> None:
    """Run a write through the backend's own route, so seeding validates exactly like the API."""
    request = Request("POST", "/v1/" + SEED_MOUNT + "/" + path, {}, {}, json.dumps(data).encode())
    try:
        route, params = backend.router.match(WRITE, path)
    except RouteNotFound:
        raise VaultError(400, f"invalid name in {path!r}") from None
    call = Call(WRITE, path, SEED_MOUNT + "/" + path, data, request, state.clock.now(), None, SEED_MOUNT + "/", params)
    route.handler(call)


def register_database_admin_routes(router: Router, state: VaultState, ticker: RotationTicker) -> None:
    def tick(_: Request) -> Response:
        rotated = ticker.tick()
        return Response.json(200, {"rotated": [{"mount": mount, "role": role} for mount, role in rotated]})

    def rotate(request: Request) -> Response:
        try:
            payload = request.json() or {}
            mount_path, name = str(payload.get("mount", SEED_MOUNT)).strip("/") + "/", str(payload["role"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return Response.json(400, {"error": f"bad rotate request: {exc}"})
        with state.lock:
            backend = dict(database_mounts(state)).get(mount_path)
            role = backend.static_roles.get(name) if backend is not None else None
            if backend is None or role is None:
                return Response.json(404, {"error": f"no static role {name!r} on {mount_path}"})
            try:
                backend.rotate(role, state.clock.now())
            except VaultError as error:
                return Response.json(409, {"error": "; ".join(m.strip() for m in error.messages)})
            return Response.json(200, {"last_vault_rotation": role.last_vault_rotation})

    def describe(_: Request) -> Response:
        with state.lock:
            roles = [
                {
                    "mount": path,
                    "role": role.name,
                    "username": role.username,
                    "last_vault_rotation": role.last_vault_rotation,
                    "next_rotation": role.next_rotation(),
                    "rotations": role.rotations,
                    "password_sha256": fingerprint(role.password),
                }
                for path, backend in database_mounts(state)
                for role in backend.static_roles.values()
            ]
        return Response.json(200, {"static_roles": roles})

    router.add(["POST"], ADMIN_PREFIX + "/database/tick", tick)
    router.add(["POST"], ADMIN_PREFIX + "/database/rotate", rotate)
    router.add(["GET"], ADMIN_PREFIX + "/database/static-roles", describe)
