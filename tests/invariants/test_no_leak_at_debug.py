"""Invariant 1 through the real command line at ``--log-level debug``, where hvac, urllib3 and httpx
would show requests if anything let them: no secret value, no key material and no credential (Vault
token, issued client token, AppRole secret_id, Cloudflare token) appears in stdout, stderr (logs),
``status --json`` or the state file (with its WAL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.service_conftest_helpers import CANARIES, Stack, running_stack
from tests.invariants.invariant_stack import (
    CANARY_TENANT,
    KEY_CANARIES,
    enable_approle,
    issued_vault_tokens,
    run_cli,
    seed_extras,
    state_bytes,
    write_invariant_config,
)

COMMANDS = (("once",), ("once",), ("plan",), ("plan", "--json"), ("check",), ("status",), ("status", "--json"))


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with running_stack(monkeypatch) as running:
        seed_extras(running)
        yield running


def _found(secrets: list[str], texts: list[str], blob: bytes) -> list[str]:
    """Indexes of the secrets that appear, never the secrets themselves (pytest prints this)."""
    return [f"secret#{i}" for i, s in enumerate(secrets) if any(s in t for t in texts) or s.encode() in blob]


def _run_everything(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[list[str], dict[str, int]]:
    texts: list[str] = []
    codes: dict[str, int] = {}
    for argv in COMMANDS:
        code, out, err = run_cli(capsys, *argv, "--config", str(config), "--log-level", "debug", "--log-format", "json")
        codes[" ".join(argv)] = code
        texts += [out, err]
    return texts, codes


def _values(stack: Stack) -> list[str]:
    return [*CANARIES, CANARY_TENANT, *KEY_CANARIES]


def test_debug_cli_with_token_auth_leaks_no_value_or_credential(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_invariant_config(tmp_path, stack)
    texts, codes = _run_everything(capsys, config)

    assert codes == {k: 0 for k in codes}
    # Debug logging really was on: urllib3 reported its Vault requests.
    assert any('"logger": "urllib3.connectionpool"' in t and '"level": "debug"' in t for t in texts)
    secrets = [*_values(stack), stack.vault.root_token, stack.cf.api_token]
    assert _found(secrets, texts, state_bytes(tmp_path)) == []


def test_debug_cli_with_approle_leaks_no_secret_id_or_issued_token(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    role_id, secret_id = enable_approle(stack)
    monkeypatch.setenv("SYNCD_TEST_SECRET_ID", secret_id)
    config = write_invariant_config(tmp_path, stack, approle_role_id=role_id)
    texts, codes = _run_everything(capsys, config)

    assert codes == {k: 0 for k in codes}
    issued = [t for t in issued_vault_tokens(stack) if t != stack.vault.root_token]
    assert issued, "syncd logged in with AppRole"
    secrets = [*_values(stack), secret_id, *issued, stack.cf.api_token]
    assert _found(secrets, texts, state_bytes(tmp_path)) == []


def test_status_json_holds_no_value_after_a_rejected_key(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value that cannot become a binding is reported by name, never quoted, in once and status."""
    bad_pem = "-----BEGIN RSA PRIVATE KEY-----\ncanaryRejected0123456789abcdef\n-----END RSA PRIVATE KEY-----\n"
    stack.root.secrets.kv.v2.create_or_update_secret(
        path="app/signing", secret={"hmac": "canary!not*base64", "private_pem": bad_pem}, mount_point="secret"
    )
    config = write_invariant_config(tmp_path, stack)
    code, out, err = run_cli(capsys, "once", "--config", str(config), "--log-level", "debug")
    assert code == 1
    assert "FAIL signing" in out and "HMAC_KEY" in out and "SIGNING_KEY" in out
    code, status, err2 = run_cli(capsys, "status", "--json", "--config", str(config))
    rows = {r["mapping"]: r for r in json.loads(status)["mappings"]}
    assert rows["signing"]["last_error_code"] == "ValueRejected"
    secrets = ["canary!not*base64", "canaryRejected0123456789abcdef"]
    assert _found(secrets, [out, err, status, err2], state_bytes(tmp_path)) == []
