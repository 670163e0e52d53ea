"""``KubernetesEmulator``: Leases and Secrets of the Kubernetes API on a local port.

Real paths (``/apis/coordination.k8s.io/v1/namespaces/{ns}/leases[/{name}]``,
``/api/v1/namespaces/{ns}/secrets[/{name}]``): GET (one, or the list), POST, PUT, PATCH, DELETE.
Every request passes authentication (bearer token, else 401), the token's partition (see
``access``), then authorization (verb, group, resource, namespace, name, else 403), as the
apiserver's filter chain does. Admin routes under ``/__devstack`` (no auth):

- ``POST /__devstack/tokens`` ``{"user", "rules"?: [{"verbs", "resources", "apiGroups"?,
  "resourceNames"?, "namespace"?}], "token"?}`` -> 201 ``{"token"}`` (no rules: full access).
- ``DELETE /__devstack/tokens`` ``{"token"}``: revoke it (401 from then on).
- ``POST /__devstack/partitions`` ``{"token", "mode": "error"|"drop"|"hang", "status"?: 503}``: cut the
  token off; ``DELETE /__devstack/partitions`` ``{"token"?}``: heal it (all, without a token).
- ``GET|DELETE /__devstack/audit``: the authenticated requests with their user (``{"user", "verb",
  "method", "path", "status", "time"}``), like the API server's audit log: which replica wrote what.
- the shared ``requests``, ``faults`` and ``clock`` routes of ``httpkit``.

Not emulated (nothing in syncd uses them): watch, ``deletecollection``, server-side apply,
``dryRun`` (ignored: the write happens), ``generateName``, label selectors, ``managedFields``,
``generation``, immutable Secrets, and the error for a ``resourceVersion`` sent on create (it is
dropped).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from syncd.devstack.httpkit import (
    ADMIN_PREFIX,
    Clock,
    DropConnection,
    EmulatorServer,
    EmulatorState,
    Request,
    Response,
    Router,
)
from syncd.devstack.kubernetes import status
from syncd.devstack.kubernetes.access import ALL_ACCESS, AccessControl, Identity, Rule
from syncd.devstack.kubernetes.patch import apply_patch
from syncd.devstack.kubernetes.resources import LEASES, SECRETS, Kind
from syncd.devstack.kubernetes.status import StatusError
from syncd.devstack.kubernetes.store import ObjectStore

DEFAULT_NAMESPACE = "syncd"
DEFAULT_SERVICE_ACCOUNT = "syncd"
_NAMESPACE = r"/namespaces/(?P<ns>[a-z0-9][-a-z0-9]*)"
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_BODY_TYPES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]


@dataclass(frozen=True)
class KubernetesConfig:
    # ValidateSecret's MaxSecretSize (1 MiB of decoded data).
    secret_max_bytes: int = 1024 * 1024
    # The apiserver's MaxRequestBodyBytes default (3 MiB) -> 413 RequestEntityTooLarge.
    max_request_bytes: int = 3 * 1024 * 1024
    # True: a request without a token is ``system:anonymous`` (403 by RBAC) as with
    # --anonymous-auth=true; False: 401. Unverified which one a given cluster uses: it is a flag.
    anonymous_auth: bool = False
    # How long a ``hang`` partition holds a request before dropping it.
    hang_limit: float = 60.0


class KubernetesEmulator:
    """A local, faithful stand-in for the Kubernetes API's Lease and Secret endpoints."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        clock: Clock | None = None,
        config: KubernetesConfig | None = None,
    ) -> None:
        self.config = config or KubernetesConfig()
        self.namespace = namespace
        self.state = EmulatorState(clock)
        self.store = ObjectStore(self.state.lock, self.state.clock, self.config.secret_max_bytes)
        self.access = AccessControl(self.state.lock)
        self.token = self.access.add_token(f"system:serviceaccount:{namespace}:{DEFAULT_SERVICE_ACCOUNT}")
        self.audit: list[dict[str, Any]] = []
        router = Router()
        for kind, prefix in ((LEASES, "/apis/coordination\\.k8s\\.io/v1"), (SECRETS, "/api/v1")):
            collection = prefix + _NAMESPACE + "/" + kind.plural
            router.add(["GET", "POST"], collection, self._collection_handler(kind))
            router.add(["GET", "PUT", "PATCH", "DELETE"], collection + r"/(?P<name>[^/]+)", self._object_handler(kind))
        self._add_admin_routes(router)
        self._server = EmulatorServer(
            router,
            self.state,
            not_found=self._not_found,
            method_not_allowed=lambda _: status.method_not_allowed().response(),
            before=self._before,
            after=self._audit,
            host=host,
            port=port,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> KubernetesEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self.access.heal()  # releases requests held by a "hang" partition
        self._server.stop()

    def __enter__(self) -> KubernetesEmulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- conveniences for tests (the admin API does the same over HTTP) --------------------------

    def add_token(self, user: str, rules: tuple[Rule, ...] = ALL_ACCESS, token: str | None = None) -> str:
        return self.access.add_token(user, rules, token)

    def revoke_token(self, token: str) -> None:
        self.access.revoke(token)

    def partition(self, token: str, mode: str = "error", status_code: int = 503) -> None:
        self.access.partition(token, mode, status_code)

    def heal(self, token: str | None = None) -> None:
        self.access.heal(token)

    def held_requests(self, token: str) -> int:
        """How many requests of ``token`` a ``hang`` partition holds now (0 when not partitioned)."""
        partition = self.access.partition_of(token)
        return partition.held if partition is not None else 0

    def lease(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.store.get(LEASES, namespace or self.namespace, name)

    def secret(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.store.get(SECRETS, namespace or self.namespace, name)

    def put_object(self, kind: Kind, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Create an object directly (as the manifests would), bypassing auth."""
        return self.store.create(kind, namespace or self.namespace, body)

    # -- request handling -----------------------------------------------------------------------

    def _identity(self, request: Request) -> Identity | None:
        header = request.header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Identity("system:anonymous", ()) if self.config.anonymous_auth else None
        return self.access.identity(token.strip())

    def _before(self, request: Request) -> Response | None:
        header = request.header("Authorization") or ""
        token = header.partition(" ")[2].strip()
        partition = self.access.partition_of(token) if token else None
        if partition is not None:
            if partition.mode == "error":
                return Response(partition.status, b"", {"Content-Type": "text/plain"})
            if partition.mode == "hang":
                with self.state.lock:
                    partition.held += 1
                partition.healed.wait(self.config.hang_limit)
                with self.state.lock:
                    partition.held -= 1
            raise DropConnection
        if self._identity(request) is None:
            return status.unauthorized().response()
        if len(request.body) > self.config.max_request_bytes:
            return status.request_entity_too_large(self.config.max_request_bytes).response()
        return None

    def _audit(self, request: Request, response: Response) -> None:
        identity = self._identity(request)
        if identity is None or request.path.startswith(ADMIN_PREFIX):
            return
        collection = request.path.rstrip("/").rsplit("/", 1)[-1] in (LEASES.plural, SECRETS.plural)
        entry = {
            "user": identity.user,
            "verb": "list" if request.method == "GET" and collection else _VERBS.get(request.method, "unknown"),
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "time": self.state.clock.now(),
        }
        with self.state.lock:
            self.audit.append(entry)

    def _authorize(self, request: Request, verb: str, kind: Kind, name: str) -> None:
        identity = self._identity(request)
        assert identity is not None  # _before answered 401 otherwise
        namespace = request.params["ns"]
        if not identity.may(verb, kind.group, kind.plural, namespace, name):
            raise status.forbidden(kind.group_resource, name, identity.user, verb, namespace)

    @staticmethod
    def _answer(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            try:
                return handler(request)
            except StatusError as error:
                return error.response()

        return wrapped

    def _collection_handler(self, kind: Kind) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            namespace = request.params["ns"]
            if request.method == "GET":
                self._authorize(request, "watch" if request.query_value("watch") == "true" else "list", kind, "")
                return Response.json(200, self.store.list(kind, namespace))
            self._authorize(request, "create", kind, "")
            return Response.json(201, self.store.create(kind, namespace, _object_body(request, kind)))

        return self._answer(handle)

    def _object_handler(self, kind: Kind) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            namespace, name = request.params["ns"], request.params["name"]
            self._authorize(request, _VERBS[request.method], kind, name)
            if request.method == "GET":
                return Response.json(200, self.store.get(kind, namespace, name))
            if request.method == "PUT":
                return Response.json(200, self.store.replace(kind, namespace, name, _object_body(request, kind)))
            if request.method == "PATCH":
                patch = _json(request)
                with self.store.lock:
                    patched = apply_patch(
                        request.header("Content-Type") or "", self.store.get(kind, namespace, name), patch
                    )
                    return Response.json(200, self.store.patch(kind, namespace, name, patched))
            removed = self.store.delete(kind, namespace, name)
            return Response.json(200, status.deleted(kind.group_resource, name, removed["metadata"]["uid"]))

        return self._answer(handle)

    def _not_found(self, request: Request) -> Response:
        if request.path.startswith(ADMIN_PREFIX):
            return Response.json(404, {"error": f"no admin route {request.method} {request.path}"})
        return status.path_not_found().response()

    # -- admin ----------------------------------------------------------------------------------

    def _add_admin_routes(self, router: Router) -> None:
        def admin(handler: Callable[[dict[str, Any]], Response]) -> Callable[[Request], Response]:
            def wrapped(request: Request) -> Response:
                try:
                    body = request.json() or {}
                    if not isinstance(body, dict):
                        raise ValueError("the body must be a JSON object")
                    return handler(body)
                except (ValueError, KeyError, TypeError) as exc:
                    return Response.json(400, {"error": str(exc)})

            return wrapped

        def add_token(body: dict[str, Any]) -> Response:
            rules = body.get("rules")
            parsed = ALL_ACCESS if rules is None else tuple(Rule.from_json(rule) for rule in rules)
            return Response.json(201, {"token": self.add_token(str(body["user"]), parsed, body.get("token"))})

        def revoke_token(body: dict[str, Any]) -> Response:
            self.revoke_token(str(body["token"]))
            return Response.empty()

        def partition(body: dict[str, Any]) -> Response:
            self.partition(str(body["token"]), str(body.get("mode", "error")), int(body.get("status", 503)))
            return Response.json(201, {"partitioned": True})

        def list_audit(_: Request) -> Response:
            with self.state.lock:
                return Response.json(200, {"audit": list(self.audit)})

        def clear_audit(_: Request) -> Response:
            with self.state.lock:
                self.audit.clear()
            return Response.empty()

        def heal(body: dict[str, Any]) -> Response:
            self.heal(body.get("token"))
            return Response.empty()

        router.add(["POST"], ADMIN_PREFIX + "/tokens", admin(add_token))
        router.add(["DELETE"], ADMIN_PREFIX + "/tokens", admin(revoke_token))
        router.add(["POST"], ADMIN_PREFIX + "/partitions", admin(partition))
        router.add(["DELETE"], ADMIN_PREFIX + "/partitions", admin(heal))
        router.add(["GET"], ADMIN_PREFIX + "/audit", list_audit)
        router.add(["DELETE"], ADMIN_PREFIX + "/audit", clear_audit)


def _json(request: Request) -> Any:
    try:
        return request.json()
    except ValueError as exc:
        raise status.bad_request(f"error decoding patch: {exc}") from None


def _object_body(request: Request, kind: Kind) -> dict[str, Any]:
    # An absent Content-Type is JSON (apiserver negotiation.NegotiateInputSerializer).
    content_type = (request.header("Content-Type") or "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise status.unsupported_media_type(content_type, _BODY_TYPES)
    try:
        body = json.loads(request.body or b"null")
    except ValueError as exc:
        raise status.bad_request(
            f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}: {exc}'
        ) from None
    if not isinstance(body, dict):
        raise status.bad_request(f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}')
    return body
