"""Wiring: settings become correctly configured clients, login strategies and shared pacers."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.app.service.logs import configure_logging
from syncd.app.service.wiring import (
    PacerRegistry,
    build_cloudflare,
    build_vault,
    log_insecure_settings,
    vault_login_strategy,
)
from syncd.clients.vault_auth import AppRoleLogin, JwtLogin, KubernetesLogin, TokenLogin
from syncd.config import ConfigError, Settings, parse_config
from syncd.model import Target

ACCOUNT = "0123456789abcdef0123456789abcdef"
CANARY_JWT = "canary-jwt-0a1b2c3d"
CANARY_JWT_NEW = "canary-jwt-rotated-99"
CANARY_SECRET_ID = "canary-secret-id-5e5e"
CANARY_CF = "canary-cf-token-1212"


def settings_with(
    vault_extra: str = "", auth: str = "", cloudflare_auth: str = "", cloudflare_extra: str = ""
) -> Settings:
    return parse_config(
        f"""
[vault]
address = "https://vault.test:8200"
concurrency = 6
timeout_seconds = 4
{vault_extra}
[vault.auth]
{auth or 'method = "token"'}
[cloudflare]
account_id = "{ACCOUNT}"
rate_limit_requests = 100
rate_limit_window_seconds = 60
{cloudflare_extra}
[cloudflare.auth]
{cloudflare_auth or 'api_token = { env = "SYNCD_TEST_CF" }'}
"""
    )


class _RecordingAuth:
    """Just enough of ``hvac.Client.auth`` for a login strategy."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        outer = self

        class _Method:
            def __init__(self, name: str) -> None:
                self.name = name

            def login(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
                outer.calls.append((self.name, {"args": args, **kwargs}))
                return {"auth": {"client_token": "t", "lease_duration": 60, "renewable": True}}

            jwt_login = login

        self.kubernetes = _Method("kubernetes")
        self.approle = _Method("approle")
        self.jwt = _Method("jwt")


class _FakeClient:
    def __init__(self) -> None:
        self.auth = _RecordingAuth()
        self.token = ""


def _call(fn: Any, operation: str, path: str) -> Any:
    return fn()


# -- Vault -----------------------------------------------------------------------------------------


def test_vault_client_gets_tls_namespace_timeout_and_a_pool_sized_to_concurrency(tmp_path: Path) -> None:
    settings = settings_with(
        'namespace = "platform/"\n'
        "[vault.tls]\n"
        f'ca_bundle = "{tmp_path}/ca.pem"\nclient_cert = "{tmp_path}/tls.crt"\nclient_key = "{tmp_path}/tls.key"\n'
    )
    client, tokens, reader = build_vault(settings)
    adapter = client.adapter
    assert adapter.namespace == "platform/"
    assert adapter._kwargs["timeout"] == 4
    assert adapter.session.verify == f"{tmp_path}/ca.pem"
    assert adapter.session.cert == (f"{tmp_path}/tls.crt", f"{tmp_path}/tls.key")
    assert adapter.session.get_adapter("https://vault.test:8200")._pool_maxsize == 7  # concurrency + token manager
    assert not tokens.is_valid()  # no login happens while wiring
    assert "vault.test" in repr(reader)


def test_vault_verify_false_beside_a_ca_bundle_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError) as refused:
        settings_with('[vault.tls]\nverify = false\nca_bundle = "/ca.pem"')
    assert "vault.tls.verify" in str(refused.value) and "ca_bundle" in str(refused.value)
    client, _, _ = build_vault(settings_with("[vault.tls]\nverify = false"))
    assert client.adapter.session.verify is False


def test_token_auth_reads_the_configured_env_var_at_login(monkeypatch: pytest.MonkeyPatch) -> None:
    strategy = vault_login_strategy(settings_with(auth='method = "token"\ntoken = { env = "SYNCD_TEST_VT" }'))
    assert isinstance(strategy, TokenLogin)
    seen: list[str] = []

    class _Token:
        def lookup_self(self) -> dict[str, Any]:
            seen.append(client.token)
            return {"data": {"ttl": 60, "renewable": True, "creation_ttl": 60}}

    client = _FakeClient()
    client.auth.token = _Token()  # type: ignore[attr-defined]
    monkeypatch.setenv("SYNCD_TEST_VT", "first-token")
    assert strategy.login(client, _call).token.reveal() == "first-token"
    monkeypatch.setenv("SYNCD_TEST_VT", "second-token")
    assert strategy.login(client, _call).token.reveal() == "second-token"
    assert seen == ["first-token", "second-token"]


def test_approle_auth_uses_role_id_secret_id_and_mount(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_TEST_SECRET_ID", CANARY_SECRET_ID)
    strategy = vault_login_strategy(
        settings_with(
            auth='method = "approle"\nrole_id = "role-1"\nsecret_id = { env = "SYNCD_TEST_SECRET_ID" }\nmount = "ar"'
        )
    )
    assert isinstance(strategy, AppRoleLogin)
    client = _FakeClient()
    strategy.login(client, _call)
    [(method, kwargs)] = client.auth.calls
    assert method == "approle"
    assert kwargs["role_id"] == "role-1" and kwargs["secret_id"] == CANARY_SECRET_ID and kwargs["mount_point"] == "ar"
    assert CANARY_SECRET_ID not in repr(strategy)


def test_kubernetes_auth_rereads_the_service_account_token_at_each_login(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(CANARY_JWT + "\n")
    strategy = vault_login_strategy(
        settings_with(auth=f'method = "kubernetes"\nrole = "syncd"\ntoken_file = "{token_file}"\nmount = "k8s"')
    )
    assert isinstance(strategy, KubernetesLogin) and strategy.mount_point == "k8s"
    client = _FakeClient()
    strategy.login(client, _call)
    token_file.write_text(CANARY_JWT_NEW + "\n")
    strategy.login(client, _call)
    assert [c[1]["args"] for c in client.auth.calls] == [("syncd", CANARY_JWT), ("syncd", CANARY_JWT_NEW)]


def test_jwt_auth_uses_its_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "jwt"
    token_file.write_text(CANARY_JWT)
    strategy = vault_login_strategy(settings_with(auth=f'method = "jwt"\nrole = "ci"\ntoken_file = "{token_file}"'))
    assert isinstance(strategy, JwtLogin) and strategy.mount_point == "jwt"
    client = _FakeClient()
    strategy.login(client, _call)
    assert client.auth.calls[0][1]["args"] == ("ci", CANARY_JWT)


# -- Cloudflare ------------------------------------------------------------------------------------


def _recording_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"success": True, "errors": [], "messages": [], "result": []})

    return httpx.MockTransport(handle)


def test_cloudflare_api_token_is_read_from_env_at_each_request(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    monkeypatch.setenv("SYNCD_TEST_CF", CANARY_CF)
    client, pacer = build_cloudflare(settings_with(), transport=_recording_transport(seen))
    target = Target(ACCOUNT, "w")
    client.list_secrets(target)
    monkeypatch.setenv("SYNCD_TEST_CF", CANARY_CF + "-new")
    client.list_secrets(target)
    assert [r.headers["authorization"] for r in seen] == [f"Bearer {CANARY_CF}", f"Bearer {CANARY_CF}-new"]
    assert pacer.limit == 100 and pacer.window == 60
    assert CANARY_CF not in repr(client)


def test_cloudflare_global_key_sends_email_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    monkeypatch.setenv("SYNCD_TEST_GK", "0123abcd")
    settings = settings_with(cloudflare_auth='email = "ops@example.com"\nglobal_key = { env = "SYNCD_TEST_GK" }')
    client, _ = build_cloudflare(settings, transport=_recording_transport(seen))
    client.list_secrets(Target(ACCOUNT, "w"))
    assert seen[0].headers["x-auth-email"] == "ops@example.com"
    assert seen[0].headers["x-auth-key"] == "0123abcd"


def test_one_pacer_per_credential() -> None:
    registry = PacerRegistry()
    same_a = build_cloudflare(settings_with(), pacers=registry)[1]
    same_b = build_cloudflare(settings_with(cloudflare_extra="timeout_seconds = 3"), pacers=registry)[1]
    other = build_cloudflare(
        settings_with(cloudflare_auth='api_token = { env = "SYNCD_TEST_OTHER" }'), pacers=registry
    )[1]
    assert same_a is same_b
    assert other is not same_a
    assert build_cloudflare(settings_with())[1] is not same_a  # no registry: a fresh pacer


def test_start_up_names_each_insecure_setting_in_the_json_log() -> None:
    """The field is not ``key``: the redaction masks fields of that name, so the JSON line said
    ``"key": "***"`` and nobody could tell which setting was insecure."""
    stream = io.StringIO()
    configure_logging(format="json", level="info", stream=stream)
    settings = settings_with(vault_extra="[vault.tls]\nverify = false")

    log_insecure_settings(settings)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["event"], line["setting"]) for line in lines] == [
        ("insecure setting", "vault.tls.verify"),
        ("insecure setting", "sync.fingerprint_key"),  # the default key, kept beside the fingerprints
    ]
    assert "verif" in lines[0]["problem"]
