"""The Vault emulator: HTTP verbs to logical requests, seal gate, token and ACL checks, dispatch.

Request pipeline (as Vault's ``http/logical.go`` and ``vault/request_handling.go``):

1. Verb -> operation: GET read (``?list=true`` list), LIST list, POST/PUT write, DELETE delete,
   PATCH patch (only with ``Content-Type: application/merge-patch+json``, else 415), HEAD for
   ``sys/health``; any other verb 405 ``{"errors":[]}``. A list path gets a trailing slash.
2. Sealed: 503 ``Vault is sealed`` except ``sys/health``, ``sys/seal-status``, ``sys/unseal``.
3. Route: ``sys/`` and ``auth/token/`` are built in; otherwise the longest matching secrets
   mount or ``auth/<mount>/``. No mount: 404 ``no handler for route "<path>". route entry not
   found.``; a path the backend lacks: 404 ``unsupported path``; a verb it lacks: 405
   ``unsupported operation`` (both multi-error wrapped).
4. Token (``X-Vault-Token`` or ``Authorization: Bearer``), unless the route is unauthenticated
   (logins, health, seal status, unseal): none -> 403 ``permission denied``; unknown, expired or
   revoked -> 403 ``2 errors occurred: permission denied, invalid token`` (verified against
   real responses quoted in public code); denied by policy -> 403 ``1 error occurred:
   permission denied``. Writes need ``create`` or ``update`` by the backend's existence check.

Response wrapping (``X-Vault-Wrap-TTL``, ``sys/wrapping/*``) is in ``syncd.devstack.vault.wrapping``;
the database engine's static roles, rotated on the emulator's clock by a background ticker, in
``syncd.devstack.vault.database`` and ``database_rotation``.

Event notifications (Enterprise): ``GET sys/events/subscribe/{event_type}`` upgrades to a
WebSocket after the token and ``read`` checks, and every successful KV change is published; see
``syncd.devstack.vault.events``. ``enterprise_events=False`` leaves the path to ``sys/`` (404
``unsupported path``), as on Community Edition. ``POST /__devstack/events/drop`` cuts every event
connection (to test reconnects).

UNVERIFIED: the plain ``permission denied`` text for a missing token (seen in a dapr issue from
2020 against a then-current Vault); change ``MISSING_TOKEN_MESSAGE`` if a newer server differs.
Token ``num_uses`` is recorded but not decremented.
"""

from __future__ import annotations

from typing import Any

from syncd.devstack.httpkit import ADMIN_PREFIX, Clock, EmulatorServer, Request, Response, Router
from syncd.devstack.vault.audit import AuditBroker, register_audit_routes
from syncd.devstack.vault.database_rotation import (
    DEFAULT_TICK_INTERVAL,
    RotationTicker,
    register_database_admin_routes,
    seed_static_role,
)
from syncd.devstack.vault.events import EventBus, subscribe_pattern
from syncd.devstack.vault.routing import (
    DELETE,
    LIST,
    PATCH,
    READ,
    WRITE,
    Call,
    LogicalRouter,
    RouteNotFound,
    client_token_id,
)
from syncd.devstack.vault.state import VaultState
from syncd.devstack.vault.sys_mounts import enable_secrets_engine, register_mount_routes
from syncd.devstack.vault.sys_policies import register_policy_routes
from syncd.devstack.vault.sys_seal import SEALED_OK_PATHS, register_seal_routes, sealed_response
from syncd.devstack.vault.token_routes import register_token_routes
from syncd.devstack.vault.tokens import random_id
from syncd.devstack.vault.wire import (
    INVALID_TOKEN,
    PERMISSION_DENIED,
    VaultError,
    error_response,
    json_response,
    multi_error,
    parse_bool,
)
from syncd.devstack.vault.wrapping import (
    VALIDATED_PATHS,
    ResponseWrapping,
    register_wrapping_routes,
    requested_wrap_ttl,
)

HTTP_VERBS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "LIST")
MERGE_PATCH = "application/merge-patch+json"
MISSING_TOKEN_MESSAGE = PERMISSION_DENIED
_CAPABILITY = {READ: "read", LIST: "list", DELETE: "delete", PATCH: "patch", "head": "read"}


def _operation(request: Request) -> str:
    method = request.method
    if method == "GET":
        flag = request.query_value("list")
        if flag:
            if flag.lower() not in ("1", "t", "true", "0", "f", "false"):
                raise VaultError(400)
            return LIST if parse_bool(flag) else READ
        return READ
    if method in ("POST", "PUT"):
        return WRITE
    if method == "PATCH":
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if not content_type:
            raise VaultError(400, "mime: no media type")
        if content_type != MERGE_PATCH:
            raise VaultError(415, f"PATCH requires Content-Type of {MERGE_PATCH}, provided {content_type}")
        return PATCH
    return {"LIST": LIST, "DELETE": DELETE, "HEAD": "head"}[method]


def _request_data(request: Request, operation: str) -> dict[str, Any]:
    if operation in (WRITE, PATCH):
        try:
            payload = request.json()
        except ValueError as exc:
            raise VaultError(400, "error parsing JSON") from exc
        if payload is None:
            return {}
        if not isinstance(payload, dict):
            raise VaultError(400, "error parsing JSON")
        return payload
    return {name: values[0] for name, values in request.query.items() if name != "list" and values}


class VaultEmulator:
    """A HashiCorp Vault HTTP API emulator on a background thread (KV v2 at ``secret/``, v1 at ``kv/``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        root_token: str | None = None,
        clock: Clock | None = None,
        *,
        enterprise_events: bool = True,
        rotation_tick: float | None = DEFAULT_TICK_INTERVAL,
    ) -> None:
        """``rotation_tick``: real seconds between static-role rotation checks (None: only on demand)."""
        self.state = VaultState(clock)
        # Event notifications (Enterprise); False answers like Community Edition. See .events.
        self.enterprise_events = enterprise_events
        self.events = EventBus(self.state)
        self.root_token = root_token or f"hvs.{random_id()}"
        self.state.tokens.issue(
            self.state.clock.now(),
            policies=["root"],
            ttl=0,
            renewable=False,
            display_name="root",
            path="auth/token/root",
            token_id=self.root_token,
        )
        enable_secrets_engine(self.state, "secret", "kv", {"version": "2"})
        enable_secrets_engine(self.state, "kv", "kv", {"version": "1"})
        self.system = LogicalRouter()
        for register in (register_mount_routes, register_policy_routes, register_seal_routes, register_token_routes):
            register(self.system, self.state)
        self.audit = AuditBroker(self.state)  # sys/audit devices; see syncd.devstack.vault.audit
        register_audit_routes(self.system, self.audit)
        self.wrapping = ResponseWrapping(self.state)  # X-Vault-Wrap-TTL, sys/wrapping/*
        register_wrapping_routes(self.system, self.wrapping)
        self.rotation = RotationTicker(self.state, rotation_tick)  # database static roles, see .database
        router = Router()
        router.add(HTTP_VERBS, r"/v1/(?P<path>.*)", self._handle_http)
        router.add(["POST"], ADMIN_PREFIX + "/seal", self._admin_seal(True))
        router.add(["POST"], ADMIN_PREFIX + "/unseal", self._admin_seal(False))
        router.add(["POST"], ADMIN_PREFIX + "/events/drop", self._admin_drop_events)
        register_database_admin_routes(router, self.state, self.rotation)
        self._server = EmulatorServer(
            router,
            self.state,
            not_found=lambda _: error_response(404),
            method_not_allowed=lambda _: error_response(405),
            host=host,
            port=port,
        )

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> VaultEmulator:
        self._server.start()
        self.rotation.start()
        return self

    def stop(self) -> None:
        self.rotation.stop()
        self.events.close()
        self._server.stop()
        self.audit.close()

    def __enter__(self) -> VaultEmulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def seed_database_static_role(self, role: str, rotation_period: str | int = "1h") -> None:
        """Mount ``database/`` with a connection ``devdb`` and the static role ``role`` (see ``database_rotation``).

        A name or period the real path would refuse is ``ValueError`` with Vault's text.
        """
        try:
            seed_static_role(self.state, role, rotation_period)
        except VaultError as error:
            raise ValueError(f"static role {role!r}: {'; '.join(error.messages)}") from None

    def _admin_seal(self, sealed: bool) -> Any:
        def handle(_: Request) -> Response:
            with self.state.lock:
                self.state.sealed = sealed
            return json_response(200, {"sealed": sealed})

        return handle

    def _admin_drop_events(self, _: Request) -> Response:
        return json_response(200, {"dropped": self.events.drop_all()})

    def _handle_http(self, request: Request) -> Response:
        try:
            with self.state.lock:
                return self._handle(request)
        except VaultError as error:
            return error_response(error.status, *error.messages, headers=error.headers)

    def _handle(self, request: Request) -> Response:
        path = request.params.get("path", "")
        if not path:
            return error_response(404)
        operation = _operation(request)
        if self.state.sealed and path.rstrip("/") not in SEALED_OK_PATHS:
            return sealed_response()
        pattern = subscribe_pattern(path) if self.enterprise_events and request.method == "GET" else None
        if pattern is not None:
            return self._subscribe(request, path, pattern)
        data = _request_data(request, operation)
        wrap_ttl = requested_wrap_ttl(request)  # parsed while Vault builds the request, before any token check
        if operation == LIST and not path.endswith("/"):
            path += "/"
        router, relative, mount_path, backend = self._resolve(path)
        now = self.state.clock.now()
        token_id = client_token_id(request)
        token = self.state.tokens.valid(token_id, now) if token_id else None
        try:
            route, params = router.match(operation, relative)
        except RouteNotFound:
            self._authorize(path, operation, token_id, token, exists=None)
            raise VaultError(404, multi_error("unsupported path")) from None
        except VaultError:
            self._authorize(path, operation, token_id, token, exists=None)
            raise
        call = Call(operation, relative, path, data, request, now, token, mount_path, params)
        if path in VALIDATED_PATHS:
            self.wrapping.validate(call, token_id)  # before the token and ACL checks, as Vault does
        exists = None
        if not route.unauthenticated:
            exists = backend.exists(call) if backend is not None and operation == WRITE else None
            self._authorize(path, operation, token_id, token, exists=exists, sudo=route.sudo)
        response = self.audit.run(call, self.wrapping.handler(call, route.handler, wrap_ttl), exists=exists)
        mount = self.state.secret_mounts.get(mount_path) if not path.startswith("auth/") else None
        if mount is not None:
            self.events.publish(call, mount, response)  # after success only, as the KV plugin does
        return response

    def _subscribe(self, request: Request, path: str, pattern: str) -> Response:
        token_id = client_token_id(request)
        token = self.state.tokens.valid(token_id, self.state.clock.now()) if token_id else None
        self._authorize(path, READ, token_id, token, exists=None)
        assert token is not None
        return self.events.subscribe_response(request, pattern, token)

    def _resolve(self, path: str) -> tuple[LogicalRouter, str, str, Any]:
        if path.startswith(("sys/", "auth/token/")):
            return self.system, path, "", None
        if path.startswith("auth/"):
            mounts, rest = self.state.auth_mounts, path[len("auth/") :]
        else:
            mounts, rest = self.state.secret_mounts, path
        candidates = [m for m in mounts if rest.startswith(m) or rest + "/" == m]
        if not candidates:
            raise VaultError(404, f'no handler for route "{path}". route entry not found.')
        mount = mounts[max(candidates, key=len)]
        relative = rest[len(mount.path) :] if rest.startswith(mount.path) else ""
        return mount.backend.router, relative, mount.path, mount.backend

    def _authorize(
        self, path: str, operation: str, token_id: str | None, token: Any, *, exists: bool | None, sudo: bool = False
    ) -> None:
        if not token_id:
            raise VaultError(403, MISSING_TOKEN_MESSAGE)
        if token is None:
            raise VaultError(403, multi_error(PERMISSION_DENIED, INVALID_TOKEN))
        capability = _CAPABILITY.get(operation) or ("create" if exists is False else "update")
        if not self.state.acl_for(token).allows(path, capability, sudo=sudo):
            raise VaultError(403, multi_error(PERMISSION_DENIED))
