"""The command line and the state file's one writer: ``once`` is refused while another process
writes the state, before any call to Vault or Cloudflare; ``status`` and ``plan`` only read it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.app.conftest import run_cli as run
from tests.app.service_conftest_helpers import (
    CANARY_API_KEY,
    CANARY_ROTATED,
    CANARY_WEBHOOK,
    SCRIPT,
    Stack,
    leaked,
)
from tests.lock_holder import holder_process


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "syncd.sqlite3"



def texts(stack: Stack) -> dict[str, str]:
    return {name: body.get("text", "") for name, body in stack.cf.secrets_of(SCRIPT).items()}


def test_once_is_refused_with_exit_2_while_another_process_writes_the_state(
    stack: Stack, config: Path, state_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "once", "--config", str(config))[0] == 0
    stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)
    stack.clear_logs()
    with holder_process(state_path, expect_clean_exit=True) as holder:
        code, out, err = run(capsys, "once", "--config", str(config))
    assert code == 2
    assert out == ""
    assert "StateLocked" in err
    assert f"another syncd process (pid {holder.pid}) holds the state store {state_path}" in err
    assert "nothing was done" in err
    # Refused before the reconcile started: not even a Vault login.
    assert list(stack.vault.state.requests) == []
    assert stack.cloudflare_calls() == []
    assert texts(stack)["API_KEY"] == CANARY_API_KEY
    assert leaked(out, err) == []


def test_once_succeeds_once_the_other_writer_has_gone(
    stack: Stack, config: Path, state_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)
    with holder_process(state_path, expect_clean_exit=True):
        assert run(capsys, "once", "--config", str(config))[0] == 2
    code, out, err = run(capsys, "once", "--config", str(config))
    assert code == 0, err
    assert "ok   app-api" in out
    assert texts(stack)["API_KEY"] == CANARY_ROTATED


def test_status_and_plan_work_while_another_process_writes_the_state(
    stack: Stack, config: Path, state_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "once", "--config", str(config))[0] == 0
    stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)
    stack.clear_logs()
    with holder_process(state_path, expect_clean_exit=True):
        status_code, status_out, status_err = run(capsys, "status", "--config", str(config), "--json")
        plan_code, plan_out, plan_err = run(capsys, "plan", "--config", str(config), "--json")
    assert status_code == 0, status_err
    rows = {r["mapping"]: r for r in json.loads(status_out)["mappings"]}
    assert rows["app-api"]["last_version"] == 1 and rows["app-api"]["in_sync"] is True
    assert plan_code == 0, plan_err
    planned = {m["mapping"]: m for m in json.loads(plan_out)["mappings"]}
    assert [c["binding"] for c in planned["app-api"]["changes"]] == ["API_KEY"]  # read the recorded state
    assert [c for c in stack.cloudflare_calls() if c["method"] != "GET"] == []
    assert texts(stack)["API_KEY"] == CANARY_API_KEY
    assert leaked(status_out, status_err, plan_out, plan_err) == []


def test_plan_without_a_state_file_does_not_create_it(
    stack: Stack, config: Path, state_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "plan", "--config", str(config))
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "plan: 3 change(s) in 2 mapping(s); 0 in sync"
    assert not state_path.parent.exists()
