"""``check``, ``plan`` and ``once`` with a Secrets Store target, against the emulators."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from syncd.app.cli.main import main
from tests.app.service_conftest_helpers import API_PATH, CANARY_API_KEY, Stack, config_text, leaked

pytestmark = pytest.mark.integration


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _store_mapping(name: str, key: str, secret_name: str, *, adopt: bool = False) -> str:
    return f"""
[[mapping]]
name = "{name}"
vault = {{ mount = "secret", path = "{API_PATH}" }}
target = {{ secrets_store = "default_secrets_store", adopt = {"true" if adopt else "false"} }}
secret_text = {{ keys = {{ {key} = "{secret_name}" }} }}
"""


def _store(stack: Stack) -> str:
    created = httpx.post(f"{stack.cf.url}/__devstack/accounts/{stack.cf.account_id}/secrets_store/stores", json={})
    created.raise_for_status()
    return str(created.json()["id"])


def test_check_then_once_with_a_store_target(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_id = _store(stack)
    account = stack.cf.account_id
    stack.cf.secrets_store.create_secrets(
        account, store_id, [{"name": "webhook", "value": "theirs", "scopes": ["workers"], "comment": "by hand"}]
    )
    config = tmp_path / "syncd.toml"
    config.write_text(
        config_text(
            stack,
            tmp_path / "state.sqlite3",
            extra_mapping=_store_mapping("shared-key", "api_key", "shared-api-key")
            + _store_mapping("shared-hook", "webhook", "webhook"),
        )
    )
    code, out = _run(capsys, "check", "--config", str(config))
    (store_line,) = [line for line in out.splitlines() if "cloudflare store" in line]
    assert code == 1 and store_line.startswith("FAIL")
    assert "not syncd's (set adopt = true to take over): webhook (shared-hook)" in store_line

    config.write_text(
        config_text(
            stack,
            tmp_path / "state.sqlite3",
            extra_mapping=_store_mapping("shared-key", "api_key", "shared-api-key")
            + _store_mapping("shared-hook", "webhook", "webhook", adopt=True),
        )
    )
    code, out = _run(capsys, "check", "--config", str(config))
    (store_line,) = [line for line in out.splitlines() if "cloudflare store" in line]
    assert code == 0, out
    assert "0 syncd's, 1 to create; quota 1 of 100 in use" in store_line

    code, plan_out = _run(capsys, "plan", "--config", str(config))
    assert code == 0 and "shared-api-key" in plan_out
    assert stack.cf.secrets_store_value(account, store_id, "shared-api-key") is None  # plan writes nothing

    code, once_out = _run(capsys, "once", "--config", str(config))
    assert code == 0, once_out
    assert stack.cf.secrets_store_value(account, store_id, "shared-api-key") == CANARY_API_KEY
    assert stack.cf.secrets_store_value(account, store_id, "webhook") != "theirs"  # adopted
    code, out = _run(capsys, "check", "--config", str(config))
    assert code == 0 and "2 syncd's, 0 to create" in out
    assert leaked(out, once_out, plan_out) == []
