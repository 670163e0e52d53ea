"""The command line over real HTTP: the Vault and Cloudflare emulators, a config file in tmp_path."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

import pytest

import syncd
from tests.app.conftest import run_cli as run
from tests.app.service_conftest_helpers import (
    CANARY_API_KEY,
    CANARY_ROTATED,
    CANARY_V1,
    CANARY_WEBHOOK,
    OTHER_SCRIPT,
    SCRIPT,
    Stack,
    leaked,
    leaked_any,
    write_config,
)


def assert_clean(stack: Stack, *texts: str) -> None:
    credentials = [stack.vault.root_token, stack.cf.api_token]
    assert leaked(*texts) == []
    assert leaked_any(credentials, *texts) == []


def text_of(stack: Stack, script: str) -> dict[str, str]:
    return {name: body.get("text", "") for name, body in stack.cf.secrets_of(script).items()}


# -- once ------------------------------------------------------------------------------------------


def test_once_writes_every_mapping_and_exits_0(stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "once", "--config", str(config))
    assert code == 0
    assert text_of(stack, SCRIPT) == {"API_KEY": CANARY_API_KEY, "WEBHOOK_SECRET": CANARY_WEBHOOK}
    assert text_of(stack, OTHER_SCRIPT) == {"SEARCH_TOKEN": CANARY_V1}
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("ok   app-api (secret/app/api v1 -> ") and lines[0].endswith("2 written, 0 deleted")
    assert lines[1].startswith("ok   search-v1 (kv/search -> ") and lines[1].endswith("1 written, 0 deleted")
    assert_clean(stack, out, err)


def test_second_once_makes_no_cloudflare_calls(stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "once", "--config", str(config))[0] == 0
    versions = stack.cf.versions_of(SCRIPT)
    stack.clear_logs()
    code, out, err = run(capsys, "once", "--config", str(config))  # a new process view: same state file
    assert code == 0
    assert stack.cloudflare_calls() == []
    assert stack.cf.versions_of(SCRIPT) == versions
    assert all(line.endswith(": in sync") for line in out.strip().splitlines())
    assert_clean(stack, out, err)


def test_once_with_a_fresh_state_file_writes_again(
    stack: Stack, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The control for the test above: without the state file syncd cannot know what it pushed.
    assert run(capsys, "once", "--config", str(config))[0] == 0
    (tmp_path / "state" / "syncd.sqlite3").unlink()
    stack.clear_logs()
    assert run(capsys, "once", "--config", str(config))[0] == 0
    assert [c["method"] for c in stack.cloudflare_calls() if c["path"].endswith("secrets-bulk")] == ["PATCH", "PATCH"]


def test_rotation_costs_one_cloudflare_call_for_the_script(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "once", "--config", str(config))[0] == 0
    stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)
    stack.clear_logs()
    code, out, err = run(capsys, "once", "--config", str(config))
    assert code == 0
    writes = [c for c in stack.cloudflare_calls() if c["method"] != "GET"]
    assert len(writes) == 1 and writes[0]["path"].endswith(f"/scripts/{SCRIPT}/secrets-bulk")
    assert text_of(stack, SCRIPT)["API_KEY"] == CANARY_ROTATED
    assert "app-api (secret/app/api v2 -> " in out and "1 written" in out
    assert_clean(stack, out, err)


def test_once_exits_1_when_a_mapping_fails_and_still_syncs_the_others(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = """
[[mapping]]
name = "missing-secret"
vault = { mount = "secret", path = "does/not/exist" }
target = { script = "app-worker" }
secret_text = { keys = { k = "MISSING_K" } }
"""
    config = write_config(tmp_path, stack, extra_mapping=missing)
    code, out, err = run(capsys, "once", "--config", str(config))
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and "missing-secret" in failed[0] and "VaultSecretNotFound" in failed[0]
    assert text_of(stack, OTHER_SCRIPT) == {"SEARCH_TOKEN": CANARY_V1}
    assert_clean(stack, out, err)


# -- plan ------------------------------------------------------------------------------------------


def test_plan_lists_changes_with_versions_and_reasons_without_values(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "once", "--config", str(config))[0] == 0
    stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)
    stack.clear_logs()
    code, out, err = run(capsys, "plan", "--config", str(config))
    assert code == 0
    assert "  write  API_KEY (changed, vault v2)" in out.splitlines()
    assert "WEBHOOK_SECRET" not in out  # unchanged value: not planned
    assert "search-v1 (kv/search -> " in out and ": no changes" in out
    assert out.strip().splitlines()[-1] == "plan: 1 change(s) in 1 mapping(s); 1 in sync"
    assert [c for c in stack.cloudflare_calls() if c["method"] != "GET"] == []
    assert text_of(stack, SCRIPT)["API_KEY"] == CANARY_API_KEY  # nothing written
    assert_clean(stack, out, err)


def test_plan_json_is_machine_readable(stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "--config", str(config), "--json")
    assert code == 0
    doc = json.loads(out)
    by_name = {m["mapping"]: m for m in doc["mappings"]}
    assert sorted(by_name) == ["app-api", "search-v1"]
    changes = {(c["binding"], c["action"], c["reason"]) for c in by_name["app-api"]["changes"]}
    assert changes == {("API_KEY", "write", "new"), ("WEBHOOK_SECRET", "write", "new")}
    assert by_name["app-api"]["vault_version"] == 1
    assert by_name["app-api"]["sources"] == {"vault": 1}
    destination = by_name["app-api"]["destination"]
    assert (destination["kind"], destination["name"], destination["dispatch_namespace"]) == (
        "worker_script",
        SCRIPT,
        None,
    )
    assert stack.cf.secrets_of(SCRIPT) == {}
    assert_clean(stack, out, err)


# -- check -----------------------------------------------------------------------------------------


def test_check_passes_every_check_and_exits_0(stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", "--config", str(config))
    lines = out.strip().splitlines()
    assert code == 0, lines
    names = [line.split(":", 1)[0] for line in lines]
    assert names == [
        "ok config",
        "ok credential vault.auth.token",
        "ok credential cloudflare.auth.api_token",
        "WARN insecure sync.fingerprint_key",  # the devstack's http on loopback draws no warning
        "ok vault health",
        "ok vault auth",
        "ok vault read app-api",
        "ok vault read search-v1",
        "ok cloudflare auth",
        f"ok cloudflare script {stack.cf.account_id}/{SCRIPT}",
        f"ok cloudflare script {stack.cf.account_id}/{OTHER_SCRIPT}",
    ]
    assert "kv v2, version 1" in out and "kv v1" in out
    assert_clean(stack, out, err)


def test_check_reports_a_missing_script_and_unreadable_path_and_exits_1(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = """
[[mapping]]
name = "ghost"
vault = { mount = "secret", path = "nowhere" }
target = { script = "no-such-worker" }
secret_text = { keys = { k = "GHOST" } }
"""
    config = write_config(tmp_path, stack, extra_mapping=extra)
    code, out, err = run(capsys, "check", "--config", str(config))
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 2
    assert failed[0].startswith("FAIL vault read ghost: ")
    assert failed[1].startswith(f"FAIL cloudflare script {stack.cf.account_id}/no-such-worker: ")
    assert f"ok cloudflare script {stack.cf.account_id}/{SCRIPT}: exists" in out
    assert_clean(stack, out, err)


def test_check_with_an_unset_credential_exits_2_naming_the_variable(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNCD_TEST_CF_TOKEN")
    code, out, err = run(capsys, "check", "--config", str(config))
    assert code == 2
    assert "FAIL credential cloudflare.auth.api_token: environment variable SYNCD_TEST_CF_TOKEN is not set" in out
    assert "FAIL cloudflare auth" in out
    assert "ok vault read app-api" in out  # Vault checks still ran
    assert_clean(stack, out, err)


def test_check_with_a_refused_cloudflare_token_fails_auth(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_TEST_CF_TOKEN", "not-a-known-token")
    code, out, _ = run(capsys, "check", "--config", str(config))
    assert code == 1
    assert [line for line in out.splitlines() if line.startswith("FAIL cloudflare auth: ")]


# -- configuration and usage errors ----------------------------------------------------------------


def test_bad_config_exits_2_naming_file_mapping_and_key(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, stack)
    config.write_text(config.read_text().replace('script = "app-worker"', 'script = "Not A Script"'))
    for command in ("once", "plan", "check", "status"):
        code, out, err = run(capsys, command, "--config", str(config))
        assert code == 2
        assert out == ""
        assert str(config) in err and "'app-api'" in err and "target.script" in err


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "once", "--config", str(tmp_path / "absent.toml"))
    assert code == 2
    assert "absent.toml" in err and "cannot read" in err


def test_config_defaults_to_syncd_config_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_CONFIG", str(tmp_path / "from-env.toml"))
    code, _, err = run(capsys, "status")
    assert code == 2
    assert "from-env.toml" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "no-such-command")[0] == 2
    assert run(capsys)[0] == 2
    assert run(capsys, "plan", "--bogus")[0] == 2


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"syncd {syncd.__version__}"
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("run", "once", "plan", "check", "status", "devstack"):
        assert command in out


def test_devstack_is_delegated(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devstack", "--help")
    assert code == 0
    assert "usage: syncd devstack" in out


# -- status ----------------------------------------------------------------------------------------


def test_status_before_any_sync_says_so_and_exits_1(
    stack: Stack, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "status", "--config", str(config))
    assert code == 1
    assert out.splitlines()[0] == f"no state yet at {tmp_path / 'state' / 'syncd.sqlite3'}"
    assert "---- app-api: never pushed, never checked" in out
    assert not (tmp_path / "state" / "syncd.sqlite3").exists()  # status does not create the store


def test_status_after_once_shows_versions_and_exits_0(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "once", "--config", str(config))[0] == 0
    code, out, err = run(capsys, "status", "--config", str(config))
    assert code == 0
    line = next(line for line in out.splitlines() if "app-api" in line)
    assert line.startswith("ok   app-api: pushed v1 at 20")
    code, out, _ = run(capsys, "status", "--config", str(config), "--json")
    rows = {r["mapping"]: r for r in json.loads(out)["mappings"]}
    assert rows["app-api"]["last_version"] == 1 and rows["app-api"]["in_sync"] is True
    assert rows["search-v1"]["in_sync"] is True
    assert_clean(stack, out, err)


def test_status_shows_the_last_error(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = """
[[mapping]]
name = "broken"
vault = { mount = "secret", path = "nowhere" }
target = { script = "app-worker" }
secret_text = { keys = { k = "BROKEN" } }
"""
    config = write_config(tmp_path, stack, extra_mapping=extra)
    assert run(capsys, "once", "--config", str(config))[0] == 1
    code, out, _ = run(capsys, "status", "--config", str(config))
    assert code == 1
    line = next(line for line in out.splitlines() if "broken" in line)
    assert line.startswith("FAIL broken:") and "last error VaultSecretNotFound" in line


# -- run: the real process, real signals -----------------------------------------------------------


def _read_lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def _wait_for_log(lines: queue.Queue[str], seen: list[str], event: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            return dict(record)
    raise AssertionError(f"no {event!r} log line within the deadline")


def test_run_serves_reloads_on_sighup_and_exits_0_on_sigterm(stack: Stack, tmp_path: Path) -> None:
    config = write_config(tmp_path, stack)
    config.write_text(
        config.read_text().replace(
            "[server]\nenabled = false", '[server]\nenabled = true\nbind = "127.0.0.1"\nport = 0'
        )
    )
    env = {**os.environ, "SYNCD_TEST_VAULT_TOKEN": stack.vault.root_token, "SYNCD_TEST_CF_TOKEN": stack.cf.api_token}
    process = subprocess.Popen(
        [sys.executable, "-m", "syncd", "run", "--config", str(config), "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        url = _wait_for_log(lines, seen, "ops server listening")["url"]
        startup = _wait_for_log(lines, seen, "cycle finished")
        assert startup["trigger"] == "startup" and startup["failed"] == 0
        with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
            assert response.status == 200
        assert text_of(stack, SCRIPT) == {"API_KEY": CANARY_API_KEY, "WEBHOOK_SECRET": CANARY_WEBHOOK}
        process.send_signal(signal.SIGHUP)
        _wait_for_log(lines, seen, "configuration reloaded")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        _wait_for_log(lines, seen, "service stopped")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    err = process.stderr.read() if process.stderr else ""
    assert_clean(stack, "".join(seen), err)
    loggers = {json.loads(line).get("logger", "") for line in seen if line.startswith("{")}
    assert not [name for name in loggers if name.startswith("apscheduler")]  # scheduler internals stay quiet


def test_once_with_a_refused_vault_token_exits_1_without_showing_it(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_TEST_VAULT_TOKEN", "hvs.canary-refused-token")
    code, out, err = run(capsys, "once", "--config", str(config))
    assert code == 1
    assert "VaultAuthError" in err
    assert leaked_any(["canary-refused-token"], out, err) == []
    assert stack.cloudflare_calls() == []
