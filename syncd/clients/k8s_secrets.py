"""A thin Kubernetes API client for what the state backend needs: get and replace Secrets.

Wire facts (Kubernetes API reference, core/v1 Secret; ``k8s.io/apimachinery`` ``metav1.Status``):

- ``GET /api/v1/namespaces/{namespace}/secrets/{name}``: 200 and the Secret object.
- ``PUT`` on the same path with the whole object: ``metadata.resourceVersion`` in the body is the
  precondition; when the stored object has moved on, 409 with a ``Status`` whose reason is
  ``Conflict`` ("the object has been modified; please apply your changes to the latest version and
  try again"). 404 ``NotFound``, 403 ``Forbidden`` (RBAC), 401 ``Unauthorized`` (token).
- Errors carry a ``Status`` body: ``{"kind": "Status", "status": "Failure", "reason", "message",
  "code"}``; ``SecretsApiError`` keeps its reason and message (they name objects, never data).
- In a pod: ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``, the bearer token, CA and
  namespace from ``/var/run/secrets/kubernetes.io/serviceaccount/``. Bound service-account tokens
  rotate, so the token file is read again for every request (client-go re-reads it periodically).

Secret data never appears in an error, a log line or a repr of this client.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from syncd.errors import SyncdError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class SecretsApiError(SyncdError):
    """A Kubernetes API call on a Secret failed. ``status`` is None when no answer came."""

    def __init__(self, message: str, *, status: int | None = None, api_reason: str | None = None) -> None:
        self.status = status
        self.api_reason = api_reason
        super().__init__(message)

    @property
    def reason(self) -> str:
        return f"SecretsApiError({self.status})" if self.status is not None else "SecretsApiError"


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
        environ: Mapping[str, str] = os.environ,
    ) -> KubernetesEndpoint:
        """The pod's API server, token, CA and namespace (the ``namespace`` file beside the token);
        ``api_url``/``namespace`` override them."""
        if api_url is None:
            host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
            if not host or not port:
                raise SecretsApiError(
                    "not in a Kubernetes pod (KUBERNETES_SERVICE_HOST/PORT unset): set [leader_election] api_url"
                )
            api_url = f"https://{f'[{host}]' if ':' in host else host}:{port}"
        if namespace is None:
            namespace = _read(token_file.parent / "namespace").strip()
        return cls(
            base_url=api_url.rstrip("/"),
            namespace=namespace,
            token=lambda: _read(token_file).strip(),
            verify=_cluster_ca(ca_file) if api_url.startswith("https://") else True,
            timeout_seconds=timeout_seconds,
        )


def _cluster_ca(ca_file: Path | None) -> ssl.SSLContext | bool:
    if ca_file is None or not ca_file.is_file():
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise SecretsApiError(f"cannot load the cluster CA {ca_file}: {type(exc).__name__}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretsApiError(f"cannot read {path}: {exc.strerror}") from None


class SecretsClient:
    """``get(name)`` and ``replace(name, body)`` on the Secrets of one namespace, as JSON objects."""

    def __init__(self, endpoint: KubernetesEndpoint, *, transport: httpx.BaseTransport | None = None) -> None:
        self._endpoint = endpoint
        self._http = httpx.Client(
            base_url=endpoint.base_url,
            transport=transport,
            verify=endpoint.verify,
            timeout=endpoint.timeout_seconds,
            headers={"Accept": "application/json"},
        )

    @property
    def namespace(self) -> str:
        return self._endpoint.namespace

    def __repr__(self) -> str:
        return f"SecretsClient({self._endpoint.base_url!r}, namespace={self.namespace!r})"

    def get(self, name: str) -> dict[str, Any]:
        return self._call("GET", name, None)

    def replace(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the whole object; its ``metadata.resourceVersion`` is the precondition (409 if stale)."""
        return self._call("PUT", name, body)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, name: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        path = f"/api/v1/namespaces/{quote(self.namespace, safe='')}/secrets/{quote(name, safe='')}"
        where = f"secret {self.namespace}/{name}"
        headers = {"Authorization": f"Bearer {self._endpoint.token()}"}
        try:
            response = self._http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SecretsApiError(f"{method} {where}: {type(exc).__name__}") from None
        if response.is_success:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                raise SecretsApiError(f"{method} {where}: the answer is not a JSON object", status=response.status_code)
            return answer
        reason, message = _status_of(response)
        raise SecretsApiError(
            f"{method} {where}: {response.status_code} {reason or ''}{': ' + message if message else ''}".rstrip(),
            status=response.status_code,
            api_reason=reason,
        )


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
