"""Finding 5 (and the short trigger token of 6) of issue 21: insecure settings are said, with the
fix; ``verify = false`` beside a ``ca_bundle`` and a short trigger token are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.app.cli.commands_check import check_credentials, check_insecure
from syncd.app.credentials import CredentialError, trigger_token_from
from syncd.config import CredentialRef, Settings, parse_config
from syncd.config.insecure import insecure_settings

ACCOUNT = "0123456789abcdef0123456789abcdef"


def _settings_text(vault: str = "http://127.0.0.1:8200", extra: str = "", cloudflare: str = "", tail: str = "") -> str:
    return f"""
[vault]
address = "{vault}"
{extra}
[vault.auth]
method = "token"
token = {{ env = "VAULT_TOKEN" }}
[cloudflare]
account_id = "{ACCOUNT}"
{cloudflare}
[cloudflare.auth]
api_token = {{ env = "CF_TOKEN" }}
[sync]
fingerprint_key = {{ env = "FP_KEY" }}
{tail}
"""


def _settings(vault: str = "http://127.0.0.1:8200", extra: str = "", cloudflare: str = "", tail: str = "") -> Settings:
    return parse_config(_settings_text(vault, extra, cloudflare, tail), "syncd.toml")


def _keys(settings: Settings) -> list[str]:
    return [finding.key for finding in insecure_settings(settings)]


def test_a_loopback_devstack_over_http_draws_no_warning() -> None:
    assert _keys(_settings()) == []


def test_plain_http_to_vault_cloudflare_and_kubernetes_is_said() -> None:
    settings = _settings(
        "http://vault.internal:8200",
        cloudflare='api_base = "http://cf.internal/client/v4"',
        tail='[leader_election]\nenabled = true\napi_url = "http://k8s.internal:6443"\n[state]\nbackend = "kubernetes"',
    )
    assert _keys(settings) == ["vault.address", "cloudflare.api_base", "leader_election.api_url"]
    assert all("https://" in finding.fix for finding in insecure_settings(settings))


def test_disabled_verification_and_inline_credentials_are_said() -> None:
    text = _settings_text("https://vault.internal:8200", "allow_inline_credentials = true\n[vault.tls]\nverify = false")
    settings = parse_config(text.replace('{ env = "VAULT_TOKEN" }', '{ value = "dev-only-token-value" }'), "syncd.toml")
    assert _keys(settings) == ["vault.tls.verify", "vault.auth.token"]


def test_verify_false_beside_a_ca_bundle_is_refused() -> None:
    with pytest.raises(Exception, match=r"vault\.tls\.verify.*ca_bundle"):
        _settings(extra='[vault.tls]\nverify = false\nca_bundle = "/etc/ca.pem"')


def test_credential_files_readable_by_others_are_said_with_the_fix(tmp_path: Path) -> None:
    token = tmp_path / "cf-token"
    token.write_text("x" * 40)
    config = f'[cloudflare.auth]\napi_token = {{ file = "{token}" }}'
    os.chmod(token, 0o644)
    settings = parse_config(
        _settings_text().replace('[cloudflare.auth]\napi_token = { env = "CF_TOKEN" }', config), "syncd.toml"
    )
    findings = insecure_settings(settings)
    assert [f.key for f in findings] == ["cloudflare.auth.api_token"]
    assert "readable by every user" in findings[0].problem and "chmod 0400" in findings[0].fix
    os.chmod(token, 0o600)
    assert insecure_settings(settings) == []
    os.chmod(token, 0o640)  # our own group (a Kubernetes Secret with the pod's fsGroup)
    assert insecure_settings(settings) == []


def test_the_default_fingerprint_key_beside_the_fingerprints_is_said() -> None:
    settings = parse_config(_settings_text().replace('fingerprint_key = { env = "FP_KEY" }', ""), "syncd.toml")
    findings = insecure_settings(settings)
    assert [f.key for f in findings] == ["sync.fingerprint_key"]
    assert "openssl rand -hex 32" in findings[0].fix


def test_an_audit_port_open_to_all_without_prefix_or_allowlist_is_said() -> None:
    open_port = _settings(tail='[notifications]\naudit_listen = "0.0.0.0:9000"')
    assert _keys(open_port) == ["notifications.audit_listen"]
    allowed = _settings(tail='[notifications]\naudit_listen = "0.0.0.0:9000"\naudit_allow = ["10.0.0.0/8"]')
    assert _keys(allowed) == []


def test_check_prints_a_warn_line_and_keeps_the_exit_code() -> None:
    results = list(check_insecure(_settings("http://vault.internal:8200")))
    assert [r.line().split(":")[0] for r in results] == ["WARN insecure vault.address"]
    assert all(r.ok for r in results)


def test_a_short_trigger_token_is_refused_naming_key_and_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_SHORT_TRIGGER", "x")
    with pytest.raises(CredentialError) as refused:
        trigger_token_from(CredentialRef(env="SYNCD_SHORT_TRIGGER"))
    assert refused.value.exit_code == 2
    assert "server.trigger_token" in str(refused.value) and "env:SYNCD_SHORT_TRIGGER" in str(refused.value)
    monkeypatch.setenv("SYNCD_SHORT_TRIGGER", "y" * 32)
    assert trigger_token_from(CredentialRef(env="SYNCD_SHORT_TRIGGER"))().reveal() == "y" * 32

    monkeypatch.setenv("SYNCD_SHORT_TRIGGER", "short")
    monkeypatch.setenv("VAULT_TOKEN", "t" * 10)
    monkeypatch.setenv("CF_TOKEN", "c" * 10)
    settings = _settings(tail='[server]\ntrigger_token = { env = "SYNCD_SHORT_TRIGGER" }')
    failed = [r for r in check_credentials(settings) if not r.ok]
    assert [(r.name, r.exit_code) for r in failed] == [("credential server.trigger_token", 2)]
