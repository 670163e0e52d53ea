"""The one in-cluster Kubernetes client (``syncd.clients.kubernetes``): endpoint, token, TLS, errors."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest

from syncd.clients.kubernetes import KubernetesEndpoint, SecretsClient
from syncd.errors import KubernetesApiError, KubernetesConflict, KubernetesNotInCluster, SyncdError


def service_account(tmp_path: Path, token: str = "token-1") -> Path:
    (tmp_path / "token").write_text(token + "\n")
    (tmp_path / "namespace").write_text("syncd-ns")
    return tmp_path


def test_in_cluster_endpoint_reads_the_service_account_and_rereads_a_rotated_token(tmp_path: Path) -> None:
    directory = service_account(tmp_path)
    endpoint = KubernetesEndpoint.in_cluster(
        token_file=directory / "token",
        ca_file=directory / "ca.crt",
        environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
    )
    assert (endpoint.base_url, endpoint.namespace, endpoint.verify) == ("https://10.0.0.1:443", "syncd-ns", True)
    seen: list[tuple[str, str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers["Authorization"]))
        return httpx.Response(200, json={"kind": "Secret", "metadata": {"name": "s", "resourceVersion": "5"}})

    client = SecretsClient(endpoint, transport=httpx.MockTransport(answer))
    client.get("syncd-state-0")
    (directory / "token").write_text("token-2")
    client.replace("syncd-state-0", {"metadata": {"resourceVersion": "5"}})
    client.close()
    assert seen == [
        ("GET", "/api/v1/namespaces/syncd-ns/secrets/syncd-state-0", "Bearer token-1"),
        ("PUT", "/api/v1/namespaces/syncd-ns/secrets/syncd-state-0", "Bearer token-2"),
    ]
    assert "token" not in repr(endpoint)


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason} | {
        "code": code
    }


def test_status_errors_keep_code_reason_and_message(tmp_path: Path) -> None:
    conflict = status(409, "Conflict", 'Operation cannot be fulfilled on secrets "s": the object has been modified')
    endpoint = KubernetesEndpoint("http://api.test", "ns", token=lambda: "t")
    client = SecretsClient(endpoint, transport=httpx.MockTransport(lambda r: httpx.Response(409, json=conflict)))
    with pytest.raises(KubernetesApiError) as caught:
        client.replace("s", {"data": {"state.json.gz": "c2VjcmV0"}})
    assert (caught.value.status, caught.value.api_reason) == (409, "Conflict")
    assert str(caught.value) == (
        'PUT secret ns/s: 409 Conflict: Operation cannot be fulfilled on secrets "s": the object has been modified'
    )
    assert "c2VjcmV0" not in json.dumps([str(caught.value), repr(caught.value)])


def test_no_answer_is_an_error_without_a_status() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    endpoint = KubernetesEndpoint("http://api.test", "ns", token=lambda: "t")
    client = SecretsClient(endpoint, transport=httpx.MockTransport(refuse))
    with pytest.raises(KubernetesApiError, match="GET secret ns/s: ConnectError") as caught:
        client.get("s")
    assert caught.value.status is None


def test_the_cluster_ca_is_trusted_when_present_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    directory = service_account(tmp_path)
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    (directory / "ca.crt").write_bytes(Path(certifi.where()).read_bytes())  # any valid bundle
    token, ca = directory / "token", directory / "ca.crt"
    endpoint = KubernetesEndpoint.in_cluster(token_file=token, ca_file=ca, environ=environ)
    assert isinstance(endpoint.verify, ssl.SSLContext)
    assert endpoint.base_url == "https://[fd00::1]:6443"
    (directory / "ca.crt").write_text("not a certificate")
    with pytest.raises(KubernetesApiError, match=r"cannot load the cluster CA .*ca\.crt"):
        KubernetesEndpoint.in_cluster(token_file=token, ca_file=ca, environ=environ)


def test_a_409_is_a_conflict_and_every_kubernetes_error_is_in_the_error_tree() -> None:
    conflict = status(409, "AlreadyExists", 'leases.coordination.k8s.io "syncd-leader" already exists')
    endpoint = KubernetesEndpoint("http://api.test", "ns", token=lambda: "t")
    client = SecretsClient(endpoint, transport=httpx.MockTransport(lambda r: httpx.Response(409, json=conflict)))
    with pytest.raises(KubernetesConflict) as caught:
        client.get("s")
    assert isinstance(caught.value, SyncdError) and caught.value.exit_code == 1
    assert caught.value.reason == "KubernetesConflict(409)"
    assert issubclass(KubernetesNotInCluster, KubernetesApiError) and KubernetesNotInCluster.exit_code == 2


def test_outside_a_pod_the_missing_namespace_is_named_with_the_key_to_set(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t")  # no namespace file beside it
    with pytest.raises(KubernetesNotInCluster, match=r"namespace .*: set \[leader_election\] namespace"):
        KubernetesEndpoint.in_cluster(token_file=tmp_path / "token", api_url="http://127.0.0.1:9")
    endpoint = KubernetesEndpoint.in_cluster(token_file=tmp_path / "token", api_url="http://127.0.0.1:9", namespace="x")
    assert (endpoint.base_url, endpoint.namespace, endpoint.verify) == ("http://127.0.0.1:9", "x", True)


def test_a_vanished_token_file_is_an_api_error_naming_the_file(tmp_path: Path) -> None:
    endpoint = KubernetesEndpoint.in_cluster(token_file=tmp_path / "token", api_url="http://api.test", namespace="ns")
    client = SecretsClient(endpoint, transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})))
    with pytest.raises(KubernetesApiError, match=r"cannot read the service-account token .*token"):
        client.get("s")
