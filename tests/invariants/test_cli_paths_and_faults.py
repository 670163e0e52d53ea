"""Invariants 2-7 through the real command line (``syncd once``) against both emulators.

- secret_key bindings (raw HMAC, PEM pkcs8) and a dispatch-namespace target reach Cloudflare with
  the exact body fields (type, format, algorithm, usages, key_base64 = the DER in base64);
- one bulk call per script (invariant 4); an unchanged world costs one metadata read per KV v2
  secret and no Cloudflare call on every fresh start (invariant 3);
- 429 with Retry-After, 5xx and dropped connections on either side are survived, or converge on
  the next run (invariants 2, 7); a 10215 on one script leaves the others synced and names its
  reason in ``once`` and ``status`` (invariant 6).

stamina runs in testing mode (no backoff waits, the configured attempts kept).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina

from tests.app.service_conftest_helpers import API_PATH, CANARY_API_KEY, OTHER_SCRIPT, SCRIPT, Stack, running_stack
from tests.invariants.invariant_stack import (
    CANARY_TENANT,
    HMAC_B64,
    KEY_SCRIPT,
    NAMESPACE,
    PKCS8_DER_B64,
    SIGNING_PATH,
    TENANT_SCRIPT,
    run_cli,
    seed_extras,
    write_invariant_config,
)

ALL_SCRIPTS = ((SCRIPT, None), (OTHER_SCRIPT, None), (KEY_SCRIPT, None), (TENANT_SCRIPT, NAMESPACE))
KV2_SECRETS = (API_PATH, SIGNING_PATH, "tenant/api")


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with running_stack(monkeypatch) as running, stamina.set_testing(True, attempts=10, cap=True):
        seed_extras(running)
        yield running


def _once(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, str]:
    code, out, _ = run_cli(capsys, "once", "--config", str(config))
    return code, out


def _cf_writes(stack: Stack) -> list[dict[str, Any]]:
    return [r for r in stack.cloudflare_calls() if r["method"] in ("PATCH", "PUT", "DELETE")]


def _vault_reads(stack: Stack, kind: str) -> list[str]:
    return [r["path"] for r in list(stack.vault.state.requests) if r["path"].startswith(f"/v1/secret/{kind}/")]


def _fault(stack: Stack, emulator: str, **fault: Any) -> None:
    target = stack.cf if emulator == "cf" else stack.vault
    with target.state.lock:
        from syncd.devstack.httpkit import _fault_from_json  # noqa: PLC0415 - the admin route's parser

        target.state.faults.append(_fault_from_json(fault))


def _in_sync_everywhere(stack: Stack) -> None:
    assert stack.cf.secrets_of(SCRIPT)["API_KEY"]["text"] == CANARY_API_KEY
    assert set(stack.cf.secrets_of(OTHER_SCRIPT)) == {"SEARCH_TOKEN"}
    assert set(stack.cf.secrets_of(KEY_SCRIPT)) == {"HMAC_KEY", "SIGNING_KEY"}
    assert stack.cf.secrets_of(TENANT_SCRIPT, namespace=NAMESPACE)["TENANT_TOKEN"]["text"] == CANARY_TENANT


def test_secret_key_and_dispatch_bindings_arrive_with_exact_bodies_in_one_call_per_script(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {s: stack.cf.versions_of(s, namespace=ns) for s, ns in ALL_SCRIPTS}
    code, out = _once(capsys, write_invariant_config(tmp_path, stack))
    assert code == 0, out

    keys = stack.cf.secrets_of(KEY_SCRIPT)
    assert keys["HMAC_KEY"] == {
        "name": "HMAC_KEY",
        "type": "secret_key",
        "format": "raw",
        "algorithm": {"name": "HMAC", "hash": "SHA-256"},
        "usages": ["sign", "verify"],
        "key_base64": HMAC_B64,
    }
    assert keys["SIGNING_KEY"] == {
        "name": "SIGNING_KEY",
        "type": "secret_key",
        "format": "pkcs8",
        "algorithm": {"name": "ECDSA", "namedCurve": "P-256"},
        "usages": ["sign"],
        "key_base64": PKCS8_DER_B64,
    }
    assert stack.cf.secrets_of(TENANT_SCRIPT, namespace=NAMESPACE) == {
        "TENANT_TOKEN": {"name": "TENANT_TOKEN", "type": "secret_text", "text": CANARY_TENANT}
    }
    writes = _cf_writes(stack)
    assert sorted(r["method"] for r in writes) == ["PATCH"] * 4
    assert any(f"/dispatch/namespaces/{NAMESPACE}/scripts/{TENANT_SCRIPT}/secrets-bulk" in r["path"] for r in writes)
    assert {s: stack.cf.versions_of(s, namespace=ns) for s, ns in ALL_SCRIPTS} == {s: before[s] + 1 for s in before}


def test_unchanged_world_costs_one_metadata_read_per_secret_and_no_cloudflare_call_on_each_start(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_invariant_config(tmp_path, stack)
    assert _once(capsys, config)[0] == 0
    for _ in range(2):  # every `once` is a fresh process-equivalent: new clients, state reopened
        stack.clear_logs()
        code, out = _once(capsys, config)
        assert code == 0 and out.count(": in sync") == 4, out
        assert stack.cloudflare_calls() == []
        assert sorted(_vault_reads(stack, "metadata")) == sorted(f"/v1/secret/metadata/{p}" for p in KV2_SECRETS)
        assert _vault_reads(stack, "data") == []


# hvac's own patch() reads the current version without raise_on_deleted_version (its deprecation).
@pytest.mark.filterwarnings("ignore:The raise_on_deleted_version parameter:DeprecationWarning")
def test_rotating_the_key_secret_costs_one_call_to_its_script_only(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_invariant_config(tmp_path, stack)
    assert _once(capsys, config)[0] == 0
    before = stack.cf.versions_of(KEY_SCRIPT)
    stack.root.secrets.kv.v2.patch(path=SIGNING_PATH, secret={"hmac": "AAECAwQFBgcICQoLDA0ODw=="}, mount_point="secret")
    stack.clear_logs()
    code, out = _once(capsys, config)
    assert code == 0, out
    writes = _cf_writes(stack)
    assert [(r["method"], r["path"].rsplit("/", 2)[-2]) for r in writes] == [("PATCH", KEY_SCRIPT)]
    assert stack.cf.secrets_of(KEY_SCRIPT)["HMAC_KEY"]["key_base64"] == "AAECAwQFBgcICQoLDA0ODw=="
    assert stack.cf.versions_of(KEY_SCRIPT) == before + 1


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": 1, "body": {"success": False, "errors": [{"code": 971, "message": "slow"}]}},
        {"status": 503},
        {"status": 502, "body": "<html>bad gateway</html>"},
        {"drop": True},
    ],
    ids=["429-retry-after", "503", "502-html", "dropped"],
)
def test_cloudflare_faults_on_a_write_are_retried_within_the_run(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: dict[str, Any]
) -> None:
    config = write_invariant_config(tmp_path, stack, cloudflare_retries=3)
    _fault(stack, "cf", method="PATCH", path=f"*/scripts/{SCRIPT}/secrets-bulk", count=1, **fault)
    code, out = _once(capsys, config)
    assert code == 0, out
    _in_sync_everywhere(stack)
    to_script = [r for r in _cf_writes(stack) if f"/scripts/{SCRIPT}/" in r["path"]]
    assert len(to_script) == 2  # the faulted attempt and the retry


def test_cloudflare_faults_beyond_the_retries_fail_one_mapping_and_the_next_run_converges(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_invariant_config(tmp_path, stack, cloudflare_retries=2)
    _fault(stack, "cf", method="PATCH", path=f"*/scripts/{SCRIPT}/secrets-bulk", count=2, drop=True)
    code, out = _once(capsys, config)
    assert code == 1
    assert [line.split()[1] for line in out.splitlines() if line.startswith("FAIL")] == ["app-api"]
    assert "CloudflareTransportError" in out
    assert stack.cf.secrets_of(SCRIPT) == {}
    assert set(stack.cf.secrets_of(KEY_SCRIPT)) == {"HMAC_KEY", "SIGNING_KEY"}
    stack.clear_logs()
    code, out = _once(capsys, config)
    assert code == 0, out
    _in_sync_everywhere(stack)
    assert [r["path"].rsplit("/", 2)[-2] for r in _cf_writes(stack)] == [SCRIPT]


@pytest.mark.parametrize(
    "fault", [{"status": 503}, {"status": 429, "retry_after": 1}, {"drop": True}], ids=["503", "429", "dropped"]
)
def test_vault_faults_on_a_metadata_read_are_retried_within_the_run(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: dict[str, Any]
) -> None:
    config = write_invariant_config(tmp_path, stack)
    _fault(stack, "vault", method="GET", path=f"/v1/secret/metadata/{API_PATH}", count=1, **fault)
    code, out = _once(capsys, config)
    assert code == 0, out
    _in_sync_everywhere(stack)


def test_vault_faults_beyond_the_retries_fail_one_mapping_and_the_next_run_converges(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_invariant_config(tmp_path, stack)
    _fault(stack, "vault", method="GET", path=f"/v1/secret/data/{API_PATH}", count=50, status=500)
    code, out = _once(capsys, config)
    assert code == 1
    assert [line.split()[1] for line in out.splitlines() if line.startswith("FAIL")] == ["app-api"]
    assert "VaultUnavailable" in out
    with stack.vault.state.lock:
        stack.vault.state.faults.clear()
    code, out = _once(capsys, config)
    assert code == 0, out
    _in_sync_everywhere(stack)


@pytest.mark.parametrize(("write_mode", "code"), [("bulk", 10214), ("single", 10215)])
def test_a_not_deployed_script_fails_only_its_mapping_and_names_its_code_in_once_and_status(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], write_mode: str, code: int
) -> None:
    """Cloudflare refuses secret edits on a script whose latest version is not deployed: 10214 for
    secrets-bulk, 10215 for the single-secret PUT (as the emulator, after the real API, answers)."""
    config = write_invariant_config(tmp_path, stack)
    config.write_text(config.read_text().replace("[cloudflare]\n", f'[cloudflare]\nwrite_mode = "{write_mode}"\n'))
    expected = f"CloudflareNotDeployed({code})"
    stack.cf.set_undeployed(SCRIPT)
    exit_code, out = _once(capsys, config)
    assert exit_code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL app-api") and expected in failed[0], out
    assert set(stack.cf.secrets_of(KEY_SCRIPT)) == {"HMAC_KEY", "SIGNING_KEY"}
    assert stack.cf.secrets_of(TENANT_SCRIPT, namespace=NAMESPACE) != {}

    exit_code, status, _ = run_cli(capsys, "status", "--json", "--config", str(config))
    rows = {r["mapping"]: r for r in json.loads(status)["mappings"]}
    assert exit_code == 1
    assert rows["app-api"]["last_error_code"] == expected
    assert str(code) in rows["app-api"]["last_error"]
    assert all(rows[m]["in_sync"] for m in ("search-v1", "signing", "tenant"))

    stack.cf.set_undeployed(SCRIPT, False)
    exit_code, out = _once(capsys, config)
    assert exit_code == 0, out
    _in_sync_everywhere(stack)
