"""A thin client for the one Kubernetes resource leader election needs: a Lease (get, create, replace).

Why not the official ``kubernetes`` package: leader election needs three calls, and that package
costs 17 more distributions (aiohttp, requests-oauthlib, websocket-client, ...), ~136 MiB installed,
~5x the import time and twice the RSS of the httpx syncd already has
(``bench/kubernetes_client_footprint.py``). It stays a test dependency, proving the emulator.

In-cluster configuration as client-go's ``rest.InClusterConfig``: the API server at
``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``, the CA from ``ca.crt``, the namespace
from ``namespace``, the bearer token from ``token`` in the service-account directory, re-read when
the file changes (kubelet rotates projected tokens; client-go re-reads it too). The token goes only
into the ``Authorization`` header: never into logs, exceptions or ``repr``.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from syncd.app.leadership.record import LeaseRecord

LEASES_PATH = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"


class KubeApiError(Exception):
    """An answer other than success, with the Status ``reason`` and ``message`` (never the token)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"Kubernetes API answered {status} {reason}: {message}")
        self.status = status
        self.reason = reason


class LeaseConflict(KubeApiError):
    """409: someone else wrote the Lease first (Conflict) or created it first (AlreadyExists)."""


class TokenFile:
    """The service-account token, read again whenever the file's mtime or size changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._token = ""

    def __call__(self) -> str:
        stat = self._path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._token = self._path.read_text().strip()
                self._stamp = stamp
            return self._token

    def __repr__(self) -> str:
        return f"TokenFile({str(self._path)!r})"


def in_cluster_url(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeApiError(0, "NotInCluster", "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"https://{host}:{port}"


def build_http_client(
    base_url: str, ca_file: Path | None, timeout: float, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    verify: ssl.SSLContext | bool = True
    if base_url.startswith("https://") and ca_file is not None:
        verify = ssl.create_default_context(cafile=str(ca_file))
    return httpx.Client(base_url=base_url, verify=verify, timeout=timeout, transport=transport)


class LeaseApi:
    """Get, create and replace one namespace's Leases; ``None`` from ``get`` when absent."""

    def __init__(self, http: httpx.Client, namespace: str, token: Callable[[], str], *, timeout: float) -> None:
        self._http = http
        self._collection = LEASES_PATH.format(namespace=namespace)
        self._token = token
        self._timeout = timeout

    def get(self, name: str) -> LeaseRecord | None:
        response = self._send("GET", f"{self._collection}/{name}")
        if response.status_code == 404:
            return None
        return LeaseRecord.from_lease(self._ok(response))

    def create(self, name: str, record: LeaseRecord) -> LeaseRecord:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}}
        body["spec"] = record.spec()
        return LeaseRecord.from_lease(self._ok(self._send("POST", self._collection, body)))

    def replace(self, name: str, record: LeaseRecord) -> LeaseRecord:
        """PUT with ``record.resource_version`` as the precondition: 409 when someone wrote first."""
        metadata = {"name": name, "resourceVersion": record.resource_version}
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": record.spec()}
        return LeaseRecord.from_lease(self._ok(self._send("PUT", f"{self._collection}/{name}", body)))

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        return self._http.request(method, path, json=body, headers=headers, timeout=self._timeout)

    @staticmethod
    def _ok(response: httpx.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.is_success and isinstance(payload, dict):
            return payload
        status = payload if isinstance(payload, dict) and payload.get("kind") == "Status" else {}
        error = LeaseConflict if response.status_code == 409 else KubeApiError
        reason = str(status.get("reason") or response.reason_phrase)
        raise error(response.status_code, reason, str(status.get("message") or "no Status body"))
