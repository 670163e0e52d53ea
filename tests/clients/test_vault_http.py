"""The lean Vault read path (``vault_http``) over real loopback HTTP: what it sends, keep-alive,
a connection Vault closed while idle, failures, and the settings it takes from the hvac client."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from syncd.clients.vault import VaultReader, build_hvac_client
from syncd.clients.vault_connection import vault_http_for
from syncd.clients.vault_http import PooledHttp, ProxiedHttp, VaultTransportError, tls_context
from syncd.errors import VaultSecretNotFound, VaultUnavailable
from syncd.model import KvVersion, VaultSecretRef
from tests.clients.conftest import CANARY_TOKEN, assert_error_clean


class _Vault(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.connections = 0
        self.close_after_reply = False
        self.status = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Vault

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_GET(self) -> None:
        self.server.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        body: dict[str, Any]
        if self.server.status == 200:
            body = {"data": {"current_version": 7, "versions": {"7": {"created_time": "", "destroyed": False}}}}
        else:
            body = {"errors": ["nope"]}
        payload = json.dumps(body).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.server.status == 429:
            self.send_header("Retry-After", "60")
        self.end_headers()
        self.wfile.write(payload)
        if self.server.close_after_reply:
            # Closed without "Connection: close", as an idle timeout does: the client learns it on reuse.
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def vault() -> Iterator[_Vault]:
    server = _Vault()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_reader_sends_what_hvac_sends(vault: _Vault) -> None:
    client = build_hvac_client(
        vault.url + "/prefix/", namespace="team-a/", timeout=5.0, verify=True, client_cert=None, pool_size=2
    )
    client.token = CANARY_TOKEN
    reader = VaultReader(client, retry_attempts=1)
    try:
        info = reader.current_version(VaultSecretRef("secret", "apps/a b"), KvVersion.V2)
    finally:
        reader.close()
    assert info.version == 7
    path, headers = vault.seen[0]
    assert path == "/prefix/v1/secret/metadata/apps/a%20b"
    assert headers["x-vault-token"] == CANARY_TOKEN
    assert headers["x-vault-namespace"] == "team-a/"
    assert headers["x-vault-request"] == "true"


def test_connections_are_kept_alive_and_an_idle_one_vault_closed_is_replaced(vault: _Vault) -> None:
    http = PooledHttp(vault.url, timeout=5.0, pool_size=2)
    try:
        for _ in range(3):
            assert http.get("/v1/secret/metadata/a", {}).status == 200
        assert vault.connections == 1
        vault.close_after_reply = True
        assert http.get("/v1/secret/metadata/a", {}).status == 200  # Vault closes this one afterwards
        vault.close_after_reply = False
        assert http.get("/v1/secret/metadata/a", {}).status == 200  # the stale one is replaced, no error
        assert vault.connections == 2
    finally:
        http.close()


def test_error_statuses_are_typed_like_hvac_s(vault: _Vault) -> None:
    client = build_hvac_client(vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=2)
    reader = VaultReader(client, retry_attempts=1)
    vault.status = 404
    with pytest.raises(VaultSecretNotFound, match="HTTP 404: nope"):
        reader.current_version(VaultSecretRef("secret", "a"), KvVersion.V2)
    vault.status = 503
    with pytest.raises(VaultUnavailable, match="HTTP 503: nope"):
        reader.read(VaultSecretRef("kv", "a"), KvVersion.V1, None)
    reader.close()


def test_a_retry_after_past_the_call_s_deadline_gives_up_at_once(vault: _Vault) -> None:
    client = build_hvac_client(vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=2)
    reader = VaultReader(client, retry_attempts=4, retry_deadline=10.0)
    vault.status = 429
    with pytest.raises(VaultUnavailable, match="Retry-After 60 s passes the call's deadline") as caught:
        reader.current_version(VaultSecretRef("secret", "a"), KvVersion.V2)
    assert caught.value.status == 429
    assert len(vault.seen) == 1  # no second attempt, no wait
    reader.close()


def test_a_refused_connection_is_unavailable_without_details() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens once closed
    client = build_hvac_client(
        f"http://127.0.0.1:{port}", namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=2
    )
    client.token = CANARY_TOKEN
    reader = VaultReader(client, retry_attempts=1)
    with pytest.raises(VaultUnavailable, match=r"connection failed \(ConnectionRefusedError\)") as caught:
        reader.current_version(VaultSecretRef("secret", "a"), KvVersion.V2)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert_error_clean(caught.value)


def test_a_silent_vault_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection (backlog) but never answers
        http = PooledHttp(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.2, pool_size=1)
        with pytest.raises(VaultTransportError) as caught:
            http.get("/v1/secret/metadata/a", {})
        assert caught.value.kind == "timeout"


def test_the_transport_takes_the_hvac_client_s_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    client = build_hvac_client(
        "https://vault.example:8200",
        namespace=None,
        timeout=7.0,
        verify="/etc/ca.pem",
        client_cert=("/c.pem", "/k.pem"),
        pool_size=16,
    )
    http = vault_http_for(client)
    assert isinstance(http, PooledHttp)
    assert (http._timeout, http._pool_size, http._verify, http._client_cert) == (
        7.0,
        16,
        "/etc/ca.pem",
        ("/c.pem", "/k.pem"),
    )
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    proxied = build_hvac_client(
        "https://vault.example:8200", namespace=None, timeout=7.0, verify=True, client_cert=None, pool_size=4
    )
    assert isinstance(vault_http_for(proxied), ProxiedHttp)


def test_tls_context_follows_verify() -> None:
    off = tls_context(False, None)
    assert off.verify_mode is ssl.CERT_NONE and not off.check_hostname
    on = tls_context(True, None)
    assert on.verify_mode is ssl.CERT_REQUIRED and on.check_hostname
    with pytest.raises(OSError):
        tls_context("/nonexistent/ca.pem", None)
