"""A password Vault rotates by itself reaches the Worker with no poll and no notification: the
service checks the static role just after the rotation Vault announced (real wiring, real
APScheduler, the Vault emulator's database engine on the real clock). Also ``check`` with a
template over a static role and a KV secret."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import hvac
import pytest

from syncd.app.cli.commands_check import run_checks
from syncd.app.service.daemon import Service
from syncd.app.service.wiring import build_service
from syncd.config import load_config
from syncd.devstack.vault.database import StaticRole
from syncd.devstack.vault.database_rotation import database_mounts
from tests.app.service_conftest_helpers import SCRIPT, Stack, config_text, leaked_any, running_stack
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

WAIT = 30.0
PERIOD = 5  # seconds: the shortest rotation period Vault accepts
COMPOSED = """
[[mapping]]
name = "app-db"
target = { script = "%s" }
templates = { DATABASE_URL = "postgres://{{ db.username }}:{{ db.password | urlencode }}@{{ cfg.host }}/app" }
[mapping.sources.db]
kind = "database"
role = "app"
[mapping.sources.cfg]
mount = "secret"
path = "app/db-config"
""" % SCRIPT  # noqa: UP031 - the template's braces


def _password(root: hvac.Client) -> tuple[str, str]:
    data = root.secrets.database.get_static_credentials("app")["data"]
    return str(data["password"]), str(data["last_vault_rotation"])


def _role(stack: Stack) -> StaticRole:
    """The emulator's own record of the role, read in process: no request, so none in the log."""
    [(_, backend)] = list(database_mounts(stack.vault.state))
    return backend.static_roles["app"]


def _url(stack: Stack) -> str | None:
    body = stack.cf.secrets_of(SCRIPT).get("DATABASE_URL")
    return None if body is None else str(body.get("text"))


def _expected(password: str) -> str:
    return f"postgres://app:{quote(password, safe='')}@db.internal/app"


def _static_creds_reads(stack: Stack) -> int:
    return sum(1 for r in list(stack.vault.state.requests) if "/static-creds/" in str(r.get("path")))


def _setup(stack: Stack, tmp_path: Path) -> Path:
    stack.vault.seed_database_static_role("app", PERIOD)
    stack.root.secrets.kv.v2.create_or_update_secret(path="app/db-config", secret={"host": "db.internal"})
    path = tmp_path / "syncd.toml"
    path.write_text(config_text(stack, tmp_path / "state.sqlite3") + COMPOSED)
    return path


def test_a_scheduled_rotation_reaches_the_worker_by_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_stack(monkeypatch) as stack:
        path = _setup(stack, tmp_path)
        service = build_service(load_config(path), path)  # a 60 s interval: no poll in this test
        assert isinstance(service, Service)
        stack.clear_logs()
        service.start()
        try:
            role = _role(stack)
            seen = [role.password]
            assert wait_until(lambda: _url(stack) == _expected(seen[0]), WAIT), "the startup cycle did not push"
            lags = []
            for _ in range(2):  # two rotations Vault makes by itself, no request involved
                assert wait_until(lambda: role.password not in seen, WAIT), "the emulator did not rotate"
                password, rotated_at = role.password, role.last_vault_rotation or 0.0
                seen.append(password)
                assert wait_until(lambda p=password: _url(stack) == _expected(p), WAIT), "not pushed"  # type: ignore[misc]
                lags.append(time.time() - rotated_at)
            # Far below the 60 s interval: the schedule brought it (bench/README.md has the p99).
            assert max(lags) < 10, lags
            # One read at start-up, one per rotation (and one more if a third is due meanwhile).
            assert _static_creds_reads(stack) <= 1 + role.rotations
            status = service.status()
            assert status["last_cycle"]["trigger"] == "scheduled"  # no poll, no notification
            assert leaked_any(seen, repr(status)) == []
        finally:
            service.shutdown()


def test_check_renders_the_template_over_the_static_role(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_stack(monkeypatch) as stack:
        path = _setup(stack, tmp_path)
        results = {r.name: r for r in run_checks(load_config(path))}
        line = results["vault read app-db"].line()
        assert results["vault read app-db"].ok, line
        assert "db (database/static-creds/app) readable, static role" in line
        assert "cfg (secret/app/db-config) readable, kv v2, version 1, 1 binding(s) acceptable" in line
        stack.root.secrets.kv.v2.create_or_update_secret(path="app/db-config", secret={"hostname": "x"})
        failed = {r.name: r for r in run_checks(load_config(path))}["vault read app-db"]
        assert not failed.ok
        assert "key 'host' is missing from source 'cfg' (secret/app/db-config v2)" in failed.line()
        assert leaked_any([_password(stack.root)[0]], failed.line()) == []
