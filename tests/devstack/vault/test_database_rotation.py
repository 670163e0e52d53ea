"""Scheduled static-role rotation on the emulator's clock, the ttl countdown, audit and policies.

Vault rotates a static role by itself once ``last_vault_rotation + rotation_period`` has passed,
with no request (so no audit entry); a reader sees ``ttl`` count down to that moment. Here the
fake clock is advanced and the emulator's ticker (a real-time thread) rotates the password without
any request; tests wait on that condition with a deadline.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import hvac
import hvac.exceptions
import pytest

from syncd.devstack.vault import VaultEmulator
from syncd.devstack.vault.database import fingerprint
from syncd.devstack.vault.wire import rfc3339
from tests.devstack.vault.conftest import FrozenClock, token_with_policy
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

PERIOD = 3600


@pytest.fixture
def app_role(root: hvac.Client) -> hvac.Client:
    root.sys.enable_secrets_engine("database")
    root.secrets.database.configure("pg", "postgresql-database-plugin", allowed_roles="*", username="vault")
    root.secrets.database.create_static_role("app", "pg", "app-user", [], PERIOD)
    return root


def _admin_roles(http: httpx.Client) -> list[dict[str, object]]:
    roles = http.get("/__devstack/database/static-roles").json()["static_roles"]
    assert isinstance(roles, list)
    return roles


def _creds(client: hvac.Client) -> dict[str, object]:
    data = client.secrets.database.get_static_credentials("app")["data"]
    assert isinstance(data, dict)
    return data


def test_ttl_counts_down_on_the_emulator_clock(app_role: hvac.Client, vault: VaultEmulator) -> None:
    first = _creds(app_role)
    for elapsed, ttl in ((1, PERIOD - 1), (1799, PERIOD - 1800), (PERIOD - 1801, 1)):
        vault.state.clock.advance(elapsed)
        current = _creds(app_role)
        assert current["ttl"] == ttl
        assert current["password"] == first["password"]


def test_a_due_password_rotates_without_any_request(
    app_role: hvac.Client, vault: VaultEmulator, http: httpx.Client, tmp_path: Path
) -> None:
    audit_log = tmp_path / "audit.log"
    app_role.sys.enable_audit_device("file", options={"file_path": str(audit_log), "skip_test": "true"})
    before = _creds(app_role)
    assert vault.audit.wait_idle()
    audited_lines = audit_log.read_text().count("\n")
    requests_seen = len(vault.state.requests)

    vault.state.clock.advance(PERIOD)
    rotated_at = vault.state.clock.now()
    assert wait_until(lambda: _admin_roles(http)[0]["rotations"] == 2, timeout=10)

    assert len(vault.state.requests) == requests_seen  # no /v1 request made the rotation happen
    assert vault.audit.wait_idle()
    assert audit_log.read_text().count("\n") == audited_lines  # and none was audited
    after = _creds(app_role)
    assert after["password"] != before["password"]
    assert after["last_vault_rotation"] == rfc3339(rotated_at)
    assert after["ttl"] == PERIOD
    admin = _admin_roles(http)[0]
    assert admin["password_sha256"] == fingerprint(str(after["password"]))
    assert str(after["password"]) not in json.dumps(admin)


def test_a_request_never_sees_a_password_past_its_period() -> None:
    clock = FrozenClock()
    with VaultEmulator(clock=clock, rotation_tick=None) as emulator:
        client = hvac.Client(url=emulator.url, token=emulator.root_token)
        emulator.seed_database_static_role("app", 60)
        before = _creds(client)
        clock.advance(60)
        after = _creds(client)  # no ticker: the read itself finds the role due
        assert after["password"] != before["password"]
        assert after["last_vault_rotation"] == rfc3339(clock.now()) and after["ttl"] == 60


def test_the_admin_tick_and_rotate_routes_act_as_the_scheduler() -> None:
    clock = FrozenClock()
    with VaultEmulator(clock=clock, rotation_tick=None) as emulator, httpx.Client(base_url=emulator.url) as http:
        emulator.seed_database_static_role("app", "30s")
        assert http.post("/__devstack/database/tick").json() == {"rotated": []}
        clock.advance(30)
        assert http.post("/__devstack/database/tick").json() == {"rotated": [{"mount": "database/", "role": "app"}]}
        answer = http.post("/__devstack/database/rotate", json={"role": "app"})
        assert answer.status_code == 200 and answer.json() == {"last_vault_rotation": clock.now()}
        assert _admin_roles(http)[0]["rotations"] == 3
        assert http.post("/__devstack/database/rotate", json={"role": "ghost"}).status_code == 404


def test_a_failed_scheduled_rotation_keeps_the_password_and_retries_10s_later(
    app_role: hvac.Client, vault: VaultEmulator, http: httpx.Client
) -> None:
    before = _creds(app_role)["password"]
    app_role.secrets.database.delete_connection("pg")
    vault.state.clock.advance(PERIOD)
    assert http.post("/__devstack/database/tick").json() == {"rotated": []}
    app_role.secrets.database.configure("pg", "postgresql-database-plugin", allowed_roles="*")
    vault.state.clock.advance(9)
    assert http.post("/__devstack/database/tick").json() == {"rotated": []}
    assert _admin_roles(http)[0]["password_sha256"] == fingerprint(str(before))
    vault.state.clock.advance(1)
    assert wait_until(lambda: _admin_roles(http)[0]["rotations"] == 2, timeout=10)
    assert _creds(app_role)["password"] != before


POLICY = """
path "database/static-creds/app" { capabilities = ["read"] }
path "database/rotate-role/app" { capabilities = ["update"] }
path "database/static-roles/*" { capabilities = ["update"] }
"""


@pytest.fixture
def reader(app_role: hvac.Client, client_for: Callable[[str | None], hvac.Client]) -> Iterator[hvac.Client]:
    yield client_for(token_with_policy(app_role, "db-reader", POLICY))


def test_policies_gate_each_path(reader: hvac.Client, app_role: hvac.Client) -> None:
    assert _creds(reader)["username"] == "app-user"
    assert reader.secrets.database.rotate_static_role_credentials("app").status_code == 204
    denied = "1 error occurred:\n\t* permission denied\n\n"
    with pytest.raises(hvac.exceptions.Forbidden) as read_role:
        reader.secrets.database.read_static_role("app")
    assert read_role.value.errors == [denied]
    with pytest.raises(hvac.exceptions.Forbidden):
        reader.secrets.database.read_connection("pg")
    # update but not create: changing the existing role is allowed, creating one is not
    assert reader.secrets.database.create_static_role("app", "pg", "app-user", [], 7200).status_code == 204
    with pytest.raises(hvac.exceptions.Forbidden) as create:
        reader.secrets.database.create_static_role("team", "pg", "team-user", [], 7200)
    assert create.value.errors == [denied]


def test_requests_are_audited_with_the_password_hashed(
    app_role: hvac.Client, vault: VaultEmulator, tmp_path: Path
) -> None:
    audit_log = tmp_path / "audit.log"
    app_role.sys.enable_audit_device("file", options={"file_path": str(audit_log), "skip_test": "true"})
    password = str(_creds(app_role)["password"])
    assert vault.audit.wait_idle()
    entries = [json.loads(line) for line in audit_log.read_text().splitlines()]
    response = next(e for e in entries if e["type"] == "response")
    assert response["request"]["path"] == "database/static-creds/app"
    assert response["request"]["mount_type"] == "database"
    assert response["request"]["mount_class"] == "secret"
    assert response["response"]["data"]["password"].startswith("hmac-sha256:")
    assert password not in audit_log.read_text()
