"""Issue 11, items 3 and 5: ``check`` applies the value rule ``once`` applies, and names defaults.

A 6 KB value used to pass ``check`` (a metadata read) and fail ``once`` (Cloudflare's 5 KB limit);
both now call ``syncd.engine.values.bindings_for``. Non-string Vault values are converted by the
documented rule (JSON text), so check and once agree on them as well.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.app.cli.main import main
from tests.app.service_conftest_helpers import SCRIPT, Stack, config_text, leaked

BIG_CANARY = "canary-big-" + "x" * 6 * 1024



def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _config(tmp_path: Path, stack: Stack, extra: str) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(config_text(stack, tmp_path / "state.sqlite3", extra_mapping=extra))
    return path


def test_a_value_once_refuses_fails_check_with_the_same_reason(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.root.secrets.kv.v2.create_or_update_secret(path="big", secret={"blob": BIG_CANARY}, mount_point="secret")
    extra = f"""
[[mapping]]
name = "big"
vault = {{ mount = "secret", path = "big" }}
target = {{ script = "{SCRIPT}" }}
secret_text = {{ keys = {{ blob = "BLOB" }} }}
"""
    config = _config(tmp_path, stack, extra)
    code, check_out = _run(capsys, "check", "--config", str(config))
    failed = [line for line in check_out.splitlines() if line.startswith("FAIL")]
    assert code == 1
    assert len(failed) == 1 and failed[0].startswith("FAIL vault read big: ")
    assert "over Cloudflare's 5 KB limit" in failed[0]
    code, once_out = _run(capsys, "once", "--config", str(config))
    assert code == 1
    assert "over Cloudflare's 5 KB limit" in once_out
    assert "canary-big" not in check_out + once_out


def test_check_accepts_non_string_values_that_once_sends_as_json_text(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = {"port": 8443, "enabled": True, "limits": {"b": [1, 2], "a": None}}
    stack.root.secrets.kv.v2.create_or_update_secret(path="typed", secret=secret, mount_point="secret")
    extra = f"""
[[mapping]]
name = "typed"
vault = {{ mount = "secret", path = "typed" }}
target = {{ script = "{SCRIPT}" }}
secret_text = {{ keys = {{ port = "PORT", enabled = "ENABLED", limits = "LIMITS" }} }}
"""
    config = _config(tmp_path, stack, extra)
    code, out = _run(capsys, "check", "--config", str(config))
    assert code == 0, [line for line in out.splitlines() if line.startswith("FAIL")]
    assert "ok vault read typed: secret/typed readable, kv v2, version 1, 3 binding(s) acceptable" in out
    assert _run(capsys, "once", "--config", str(config))[0] == 0
    texts = {name: body["text"] for name, body in stack.cf.secrets_of(SCRIPT).items()}
    assert texts["PORT"] == "8443" and texts["ENABLED"] == "true"
    assert texts["LIMITS"] == '{"a": null, "b": [1, 2]}'
    assert leaked(out) == []


def test_check_says_when_a_credential_is_the_default_of_a_missing_auth_section(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", stack.vault.root_token)
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN", raising=False)
    text = config_text(stack, tmp_path / "state.sqlite3")
    text = text.replace('[vault.auth]\nmethod = "token"\ntoken = { env = "SYNCD_TEST_VAULT_TOKEN" }\n', "")
    text = text.replace('[cloudflare.auth]\napi_token = { env = "SYNCD_TEST_CF_TOKEN" }\n', "")
    config = tmp_path / "syncd.toml"
    config.write_text(text)
    code, out = _run(capsys, "check", "--config", str(config))
    assert code == 2
    assert (
        "ok credential vault.auth.token: readable (env:VAULT_TOKEN) "
        "(default: no [vault.auth] in the file, so $VAULT_TOKEN)"
    ) in out
    assert (
        "FAIL credential cloudflare.auth.api_token: environment variable CLOUDFLARE_API_TOKEN is not set "
        "(default: no [cloudflare.auth] in the file, so $CLOUDFLARE_API_TOKEN)"
    ) in out
    assert stack.vault.root_token not in out
