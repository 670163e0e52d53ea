"""Choosing the state backend from ``[state]``, the config rules for it, and the thin Secrets client."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest

from syncd.clients.k8s_secrets import KubernetesEndpoint, SecretsApiError, SecretsClient
from syncd.config import parse_config
from syncd.engine.state import MappingOutcome, StateStore
from syncd.engine.state.configured import open_configured_state, reload_on_takeover
from syncd.engine.state.kubernetes import KubernetesStateStore
from syncd.errors import ConfigError, StateError
from tests.engine.fake_secrets import FakeSecrets

BASE = """
[vault]
address = "http://vault.invalid"
auth = { method = "token", token = { env = "VAULT_TOKEN" } }
[cloudflare]
account_id = "0123456789abcdef0123456789abcdef"
auth = { api_token = { env = "CF_TOKEN" } }
"""
KEY = b"k" * 32


def test_sqlite_stays_the_default(tmp_path: Path) -> None:
    settings = parse_config(BASE + f'[sync]\nstate_path = "{tmp_path / "s.db"}"\n')
    assert settings.state.backend == "sqlite"
    with open_configured_state(settings) as store:
        assert isinstance(store, StateStore)


def test_kubernetes_without_an_external_fingerprint_key_is_a_config_error_naming_file_and_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + '[state]\nbackend = "kubernetes"\n', "/etc/syncd/config.toml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.key) == ("/etc/syncd/config.toml", "sync.fingerprint_key")
    assert 'state.backend = "kubernetes" needs an external fingerprint key' in problem.message


def test_kubernetes_settings_name_the_secrets_and_open_them() -> None:
    settings = parse_config(
        BASE
        + '[sync]\nfingerprint_key = { env = "SYNCD_FINGERPRINT_KEY" }\n'
        + '[state]\nbackend = "kubernetes"\n[state.kubernetes]\nsecret_name_prefix = "ha-state"\nsecret_count = 2\n'
    )
    assert settings.state.kubernetes.secret_names() == ["ha-state-0", "ha-state-1"]
    api = FakeSecrets(namespace="ops", names=("ha-state-0", "ha-state-1"))
    with open_configured_state(settings, fingerprint_key=KEY, secrets_api=api) as store:
        assert isinstance(store, KubernetesStateStore)
        assert store.location == "secrets ops/ha-state-0..ha-state-1"
        assert store.hmac_key == KEY
    with pytest.raises(StateError, match=r"needs sync\.fingerprint_key"):
        open_configured_state(settings, secrets_api=api)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("secret_count = 0", "state.kubernetes.secret_count"),
        ('secret_name_prefix = "Not_DNS"', "state.kubernetes.secret_name_prefix"),
        ("max_secret_bytes = 1048576", "state.kubernetes.max_secret_bytes"),
        ("surprise = 1", "state.kubernetes.surprise"),
    ],
)
def test_bad_kubernetes_state_settings_name_their_key(table: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + f"[state.kubernetes]\n{table}\n")
    assert [p.key for p in caught.value.problems] == [key]


def test_outside_a_pod_without_api_url_the_state_cannot_open_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings = parse_config(
        BASE + '[sync]\nfingerprint_key = { env = "K" }\n[state]\nbackend = "kubernetes"\n', "config.toml"
    )
    with pytest.raises(StateError, match=r"KUBERNETES_SERVICE_HOST/PORT unset\): set \[leader_election\] api_url"):
        open_configured_state(settings, fingerprint_key=KEY)


# --- the thin client ---------------------------------------------------------------------------------


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
    with pytest.raises(SecretsApiError) as caught:
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
    with pytest.raises(SecretsApiError, match="GET secret ns/s: ConnectError") as caught:
        client.get("s")
    assert caught.value.status is None


def test_a_replica_that_takes_over_reads_what_the_previous_leader_wrote_since() -> None:
    names = ("syncd-state-0",)
    api = FakeSecrets(names=names)
    follower = KubernetesStateStore.open(api, names, hmac_key=KEY)  # opened at start, before it leads
    with KubernetesStateStore.open(api, names, hmac_key=KEY) as leader:
        leader.record_mapping_results([MappingOutcome("edge", 1.0, "cfg", 3, True, True, None, None)])
    assert follower.mapping_status("edge") is None
    reload_on_takeover(follower)
    assert follower.mapping_status("edge") is not None
    follower.close()
    with StateStore.open(":memory:") as sqlite:
        reload_on_takeover(sqlite)  # nothing to do


def test_the_cluster_ca_is_trusted_when_present_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    directory = service_account(tmp_path)
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    (directory / "ca.crt").write_bytes(Path(certifi.where()).read_bytes())  # any valid bundle
    token, ca = directory / "token", directory / "ca.crt"
    endpoint = KubernetesEndpoint.in_cluster(token_file=token, ca_file=ca, environ=environ)
    assert isinstance(endpoint.verify, ssl.SSLContext)
    assert endpoint.base_url == "https://[fd00::1]:6443"
    (directory / "ca.crt").write_text("not a certificate")
    with pytest.raises(SecretsApiError, match=r"cannot load the cluster CA .*ca\.crt"):
        KubernetesEndpoint.in_cluster(token_file=token, ca_file=ca, environ=environ)
