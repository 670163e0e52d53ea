"""The one in-cluster Kubernetes API client: the leader's Lease and the state Secrets both use it.

Why not the official ``kubernetes`` package: syncd needs five calls, and that package costs 17
more distributions (aiohttp, requests-oauthlib, websocket-client, ...), ~136 MiB installed, ~5x
the import time and twice the RSS of the httpx syncd already has
(``bench/kubernetes_client_footprint.py``). It stays a test dependency, proving the emulator.

One endpoint rule, as client-go's ``rest.InClusterConfig``: the API server at
``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``, the CA from ``ca.crt`` (the system's
store when that file is absent), the namespace from ``namespace`` and the bearer token from
``token`` in the service-account directory; ``[leader_election]`` ``api_url``, ``namespace``,
``token_file`` and ``ca_file`` override them. Outside a pod, what cannot be found raises
``KubernetesNotInCluster`` (exit code 2) naming the setting to add.

One token rule: ``TokenFile`` reads the token again whenever the file's mtime or size changes
(kubelet rotates bound service-account tokens; client-go re-reads the file too), a ``stat`` per
request otherwise. The token goes only into the ``Authorization`` header: never into logs,
exceptions or ``repr``.

Wire facts (Kubernetes API reference: core/v1 Secret, coordination.k8s.io/v1 Lease;
``k8s.io/apimachinery`` ``metav1.Status``): ``GET``/``PUT`` on ``/api/v1/namespaces/{ns}/secrets/{name}``;
``GET``/``POST``/``PUT`` under ``/apis/coordination.k8s.io/v1/namespaces/{ns}/leases``. A ``PUT``
carries ``metadata.resourceVersion`` as its precondition: when the stored object has moved on, 409
``Conflict`` ("the object has been modified; please apply your changes to the latest version and
try again"); a ``POST`` of an existing name is 409 ``AlreadyExists``. 404 ``NotFound``, 403
``Forbidden`` (RBAC), 401 ``Unauthorized`` (token). Errors carry a ``Status`` body ``{"kind":
"Status", "status": "Failure", "reason", "message", "code"}``: ``KubernetesApiError`` keeps its
reason and message (they name objects, never data); 409 is ``KubernetesConflict``.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from syncd.errors import KubernetesApiError, KubernetesConflict, KubernetesNotInCluster

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
SECRETS_PATH = "/api/v1/namespaces/{namespace}/secrets"
LEASES_PATH = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"


class TokenFile:
    """The service-account token, read again whenever the file's mtime or size changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._token = ""

    def __call__(self) -> str:
        try:
            stat = self._path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            with self._lock:
                if stamp != self._stamp:
                    self._token = self._path.read_text(encoding="utf-8").strip()
                    self._stamp = stamp
                return self._token
        except OSError as exc:
            raise KubernetesApiError(f"cannot read the service-account token {self._path}: {exc.strerror}") from None

    def __repr__(self) -> str:
        return f"TokenFile({str(self._path)!r})"


def in_cluster_url(env: Mapping[str, str] | None = None) -> str:
    """The API server of the pod's cluster, from the service environment kubelet sets."""
    env = os.environ if env is None else env
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubernetesNotInCluster(
            "not in a Kubernetes pod (KUBERNETES_SERVICE_HOST/PORT unset): set [leader_election] api_url"
        )
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"https://{host}:{port}"


def cluster_ca(ca_file: Path | None) -> ssl.SSLContext | bool:
    """The cluster's CA as httpx's ``verify``; True (the system's store) when there is no file."""
    if ca_file is None or not ca_file.is_file():
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise KubernetesApiError(f"cannot load the cluster CA {ca_file}: {type(exc).__name__}") from None


def _namespace_beside(token_file: Path) -> str:
    path = token_file.parent / "namespace"
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise KubernetesNotInCluster(
            f"cannot read the pod's namespace from {path} ({exc.strerror}): set [leader_election] namespace"
        ) from None


@dataclass(frozen=True)
class KubernetesEndpoint:
    """Where the API is and how to authenticate: ``in_cluster()`` in a pod, anything in tests."""

    base_url: str
    namespace: str
    token: Callable[[], str] = field(repr=False)
    verify: ssl.SSLContext | bool = True  # the cluster's CA, or True for the system's
    timeout_seconds: float = 10.0

    @classmethod
    def in_cluster(
        cls,
        *,
        token_file: Path = SERVICE_ACCOUNT_DIR / "token",
        ca_file: Path | None = SERVICE_ACCOUNT_DIR / "ca.crt",
        api_url: str | None = None,
        namespace: str | None = None,
        timeout_seconds: float = 10.0,
        environ: Mapping[str, str] | None = None,
    ) -> KubernetesEndpoint:
        """The pod's API server, token, CA and namespace (the ``namespace`` file beside the token);
        ``api_url``/``namespace`` override them."""
        url = api_url or in_cluster_url(environ)
        return cls(
            base_url=url.rstrip("/"),
            namespace=namespace or _namespace_beside(token_file),
            token=TokenFile(token_file),
            verify=cluster_ca(ca_file) if url.startswith("https://") else True,
            timeout_seconds=timeout_seconds,
        )


class KubernetesApi:
    """JSON calls on one namespace's objects with the endpoint's token, TLS and timeout."""

    def __init__(self, endpoint: KubernetesEndpoint, *, transport: httpx.BaseTransport | None = None) -> None:
        self._endpoint = endpoint
        self._http = httpx.Client(
            base_url=endpoint.base_url,
            transport=transport,
            verify=endpoint.verify,
            timeout=endpoint.timeout_seconds,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    @property
    def namespace(self) -> str:
        return self._endpoint.namespace

    def __repr__(self) -> str:
        return f"KubernetesApi({self._endpoint.base_url!r}, namespace={self.namespace!r})"

    def close(self) -> None:
        self._http.close()

    def call(
        self, method: str, path: str, what: str, body: Mapping[str, Any] | None = None, *, absent_is_none: bool = False
    ) -> dict[str, Any] | None:
        """The answer's JSON object; None for a 404 when ``absent_is_none``. ``what`` names the
        object in errors ("secret syncd/syncd-state-0")."""
        headers = {"Authorization": f"Bearer {self._endpoint.token()}"}
        try:
            response = self._http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise KubernetesApiError(f"{method} {what}: {type(exc).__name__}") from None
        if response.status_code == 404 and absent_is_none:
            return None
        if response.is_success:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                problem = f"{method} {what}: the answer is not a JSON object"
                raise KubernetesApiError(problem, status=response.status_code)
            return answer
        reason, message = _status_of(response)
        error = KubernetesConflict if response.status_code == 409 else KubernetesApiError
        detail = f"{response.status_code} {reason or response.reason_phrase}{': ' + message if message else ''}"
        raise error(f"{method} {what}: {detail}", status=response.status_code, api_reason=reason)


def _status_of(response: httpx.Response) -> tuple[str | None, str | None]:
    """The ``reason`` and ``message`` of a ``Status`` error body, when it is one."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict) or body.get("kind") != "Status":
        return None, None
    reason, message = body.get("reason"), body.get("message")
    return (reason if isinstance(reason, str) else None), (message[:300] if isinstance(message, str) else None)


class SecretsClient:
    """``get(name)`` and ``replace(name, body)`` on the Secrets of one namespace, as JSON objects
    (implements ``syncd.engine.state.secret_objects.SecretsApi``). Secret data never appears in an
    error, a log line or a repr of this client."""

    def __init__(self, endpoint: KubernetesEndpoint, *, transport: httpx.BaseTransport | None = None) -> None:
        self._api = KubernetesApi(endpoint, transport=transport)

    @property
    def namespace(self) -> str:
        return self._api.namespace

    def __repr__(self) -> str:
        return f"SecretsClient({self._api!r})"

    def get(self, name: str) -> dict[str, Any]:
        return self._call("GET", name, None)

    def replace(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the whole object; its ``metadata.resourceVersion`` is the precondition (409 if stale)."""
        return self._call("PUT", name, body)

    def close(self) -> None:
        self._api.close()

    def _call(self, method: str, name: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        path = f"{SECRETS_PATH.format(namespace=quote(self.namespace, safe=''))}/{quote(name, safe='')}"
        answer = self._api.call(method, path, f"secret {self.namespace}/{name}", body)
        assert answer is not None  # absent_is_none is off: a 404 raised
        return answer


class LeasesClient:
    """``get`` (None when absent), ``create`` and ``replace`` on one namespace's Leases, as JSON."""

    def __init__(self, api: KubernetesApi) -> None:
        self._api = api
        self._collection = LEASES_PATH.format(namespace=quote(api.namespace, safe=""))

    def __repr__(self) -> str:
        return f"LeasesClient({self._api!r})"

    def get(self, name: str) -> dict[str, Any] | None:
        return self._api.call("GET", self._path(name), self._what(name), absent_is_none=True)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(body.get("metadata", {}).get("name", ""))
        return self._answer(self._api.call("POST", self._collection, self._what(name), body))

    def replace(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._answer(self._api.call("PUT", self._path(name), self._what(name), body))

    def close(self) -> None:
        self._api.close()

    def _path(self, name: str) -> str:
        return f"{self._collection}/{quote(name, safe='')}"

    def _what(self, name: str) -> str:
        return f"lease {self._api.namespace}/{name}"

    @staticmethod
    def _answer(answer: dict[str, Any] | None) -> dict[str, Any]:
        assert answer is not None  # absent_is_none is off: a 404 raised
        return answer
