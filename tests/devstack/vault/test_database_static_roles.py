"""The database secrets engine's connection configs and static roles, driven by hvac's ``secrets.database``.

Expected shapes and texts are those of Vault's database backend as kept by OpenBao
(``internal/builtin/logical/database/path_roles.go``, ``path_creds_create.go``,
``path_rotate_credentials.go``, ``path_config_connection.go``) and the Vault API docs; see the
docstrings of ``syncd.devstack.vault.database`` and ``database_routes``.
"""

from __future__ import annotations

import string

import hvac
import hvac.exceptions
import pytest

from syncd.devstack.vault import VaultEmulator
from syncd.devstack.vault.wire import rfc3339

pytestmark = pytest.mark.integration

CONNECTION = "pg"
ROOT_PASSWORD = "canary-root-password-7f3a"


@pytest.fixture
def db(root: hvac.Client) -> hvac.Client:
    root.sys.enable_secrets_engine("database")
    root.secrets.database.configure(
        CONNECTION,
        "postgresql-database-plugin",
        allowed_roles=["app", "team-*"],
        connection_url="postgresql://{{username}}:{{password}}@127.0.0.1:5432/app",
        username="vault",
        password=ROOT_PASSWORD,
    )
    return root


def _error(raised: pytest.ExceptionInfo[hvac.exceptions.VaultError]) -> list[str]:
    return list(raised.value.errors or [])


def test_a_database_mount_is_listed_like_vault_lists_it(db: hvac.Client) -> None:
    mounts = db.sys.list_mounted_secrets_engines()["data"]
    assert mounts["database/"]["type"] == "database"
    assert mounts["database/"]["options"] is None
    assert mounts["database/"]["running_plugin_version"].endswith("+builtin.vault")
    ui = db.adapter.get("/v1/sys/internal/ui/mounts/database/static-creds/app")["data"]
    assert ui["type"] == "database" and ui["path"] == "database/"


def test_a_connection_reads_back_without_its_password(db: hvac.Client) -> None:
    body = db.secrets.database.read_connection(CONNECTION)
    assert body["mount_type"] == "database" and body["lease_id"] == ""
    assert body["data"] == {
        "allowed_roles": ["app", "team-*"],
        "connection_details": {
            "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:5432/app",
            "username": "vault",
        },
        "password_policy": "",
        "plugin_name": "postgresql-database-plugin",
        "plugin_version": "",
        "root_credentials_rotate_statements": [],
    }
    assert ROOT_PASSWORD not in str(body)
    assert db.secrets.database.list_connections()["data"]["keys"] == [CONNECTION]


def test_a_literal_password_in_the_url_is_warned_about_and_redacted(db: hvac.Client) -> None:
    answer = db.secrets.database.configure(
        "literal", "mysql-database-plugin", connection_url=f"mysql://vault:{ROOT_PASSWORD}@127.0.0.1:3306/app"
    )
    assert answer["warnings"] == [
        "Password found in connection_url, use a templated url to enable root rotation and prevent read "
        "access to password information."
    ]
    details = db.secrets.database.read_connection("literal")["data"]["connection_details"]
    assert details["connection_url"] == "mysql://vault:xxxxx@127.0.0.1:3306/app"


def test_connection_errors_and_deletion(db: hvac.Client) -> None:
    with pytest.raises(hvac.exceptions.InvalidRequest) as raised:
        db.secrets.database.configure("nameless", "")
    assert _error(raised) == ["empty plugin name"]
    assert db.secrets.database.delete_connection(CONNECTION).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath) as missing:
        db.secrets.database.read_connection(CONNECTION)
    assert _error(missing) == []
    with pytest.raises(hvac.exceptions.InvalidPath):
        db.secrets.database.list_connections()


def test_creating_a_static_role_rotates_its_password_at_once(db: hvac.Client, vault: VaultEmulator) -> None:
    created = db.secrets.database.create_static_role("app", CONNECTION, "app-user", ["ALTER USER"], "1h30m")
    assert created.status_code == 204
    now = rfc3339(vault.state.clock.now())
    role = db.secrets.database.read_static_role("app")["data"]
    assert role == {
        "credential_type": "password",
        "db_name": CONNECTION,
        "last_vault_rotation": now,
        "rotation_period": 5400,
        "rotation_statements": ["ALTER USER"],
        "username": "app-user",
    }
    body = db.secrets.database.get_static_credentials("app")
    assert list(body) == [
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
        "mount_type",
    ]
    assert (body["lease_id"], body["renewable"], body["lease_duration"], body["mount_type"]) == (
        "",
        False,
        0,
        "database",
    )
    creds = body["data"]
    assert sorted(creds) == ["last_vault_rotation", "password", "rotation_period", "ttl", "username"]
    assert creds["username"] == "app-user" and creds["last_vault_rotation"] == now
    assert creds["rotation_period"] == 5400 and creds["ttl"] == 5400
    password = creds["password"]
    assert len(password) == 20
    for group in (string.ascii_uppercase, string.ascii_lowercase, string.digits, "-"):
        assert any(char in group for char in password)
    assert db.secrets.database.get_static_credentials("app")["data"]["password"] == password


def test_static_roles_list_and_delete(db: hvac.Client) -> None:
    db.secrets.database.create_static_role("app", CONNECTION, "app-user", [], 3600)
    db.secrets.database.create_static_role("team-b", CONNECTION, "b-user", [], 3600)
    assert db.secrets.database.list_static_roles()["data"]["keys"] == ["app", "team-b"]
    assert db.secrets.database.delete_static_role("app").status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath) as missing:
        db.secrets.database.read_static_role("app")
    assert _error(missing) == []
    db.secrets.database.delete_static_role("team-b")
    with pytest.raises(hvac.exceptions.InvalidPath):
        db.secrets.database.list_static_roles()


@pytest.mark.parametrize(
    ("name", "db_name", "username", "period", "message"),
    [
        ("app", CONNECTION, "u", 4, "rotation_period must be 5 seconds or more"),
        ("app", "", "u", 60, "database name is a required field"),
        ("app", CONNECTION, "", 60, "username is a required field to create a static account"),
    ],
)
def test_invalid_static_roles_are_refused_with_vaults_texts(
    db: hvac.Client, name: str, db_name: str, username: str, period: int, message: str
) -> None:
    with pytest.raises(hvac.exceptions.InvalidRequest) as raised:
        db.secrets.database.create_static_role(name, db_name, username, [], period)
    assert _error(raised) == [message]


def test_rotation_period_is_required_and_username_fixed(db: hvac.Client) -> None:
    with pytest.raises(hvac.exceptions.InvalidRequest) as raised:
        db.adapter.post("/v1/database/static-roles/app", json={"db_name": CONNECTION, "username": "u"})
    assert _error(raised) == ["rotation_period is required to create static accounts"]
    db.secrets.database.create_static_role("app", CONNECTION, "app-user", [], 60)
    with pytest.raises(hvac.exceptions.InvalidRequest) as renamed:
        db.secrets.database.create_static_role("app", CONNECTION, "someone-else", [], 60)
    assert _error(renamed) == ["cannot update static account username"]
    db.secrets.database.create_static_role("app", CONNECTION, "app-user", ["NEW"], "2h")
    assert db.secrets.database.read_static_role("app")["data"]["rotation_period"] == 7200


def test_a_role_its_connection_refuses_is_a_500_and_is_not_stored(db: hvac.Client) -> None:
    with pytest.raises(hvac.exceptions.InternalServerError) as refused:
        db.secrets.database.create_static_role("other", CONNECTION, "u", [], 60)
    assert _error(refused) == ['1 error occurred:\n\t* "other" is not an allowed role\n\n']
    with pytest.raises(hvac.exceptions.InternalServerError) as unknown_db:
        db.secrets.database.create_static_role("app", "nodb", "u", [], 60)
    assert _error(unknown_db) == ['1 error occurred:\n\t* failed to find entry for connection with name: "nodb"\n\n']
    with pytest.raises(hvac.exceptions.InvalidPath):
        db.secrets.database.list_static_roles()


def test_unknown_roles_on_static_creds_and_rotate_role(db: hvac.Client) -> None:
    with pytest.raises(hvac.exceptions.InvalidRequest) as creds:
        db.secrets.database.get_static_credentials("ghost")
    assert _error(creds) == ["unknown role: ghost"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as rotate:
        db.secrets.database.rotate_static_role_credentials("ghost")
    assert _error(rotate) == ["no static role found for role name"]


def test_rotate_role_changes_the_password_and_restarts_the_ttl(db: hvac.Client, vault: VaultEmulator) -> None:
    db.secrets.database.create_static_role("app", CONNECTION, "app-user", [], 3600)
    before = db.secrets.database.get_static_credentials("app")["data"]
    vault.state.clock.advance(1000)
    assert db.secrets.database.get_static_credentials("app")["data"]["ttl"] == 2600
    assert db.secrets.database.rotate_static_role_credentials("app").status_code == 204
    after = db.secrets.database.get_static_credentials("app")["data"]
    assert after["password"] != before["password"]
    assert after["last_vault_rotation"] == rfc3339(vault.state.clock.now())
    assert after["ttl"] == 3600


def test_rotate_role_without_its_connection_fails_and_keeps_the_password(db: hvac.Client) -> None:
    db.secrets.database.create_static_role("app", CONNECTION, "app-user", [], 3600)
    db.secrets.database.delete_connection(CONNECTION)
    with pytest.raises(hvac.exceptions.InternalServerError) as failed:
        db.secrets.database.rotate_static_role_credentials("app")
    assert _error(failed) == [
        "1 error occurred:\n\t* unable to finish rotating credentials; retries will continue in the background "
        'but it is also safe to retry manually: failed to find entry for connection with name: "pg"\n\n'
    ]
    with pytest.raises(hvac.exceptions.InternalServerError):
        db.secrets.database.get_static_credentials("app")


def test_rotation_schedule_is_refused_rather_than_ignored(db: hvac.Client) -> None:
    body = {"db_name": CONNECTION, "username": "u", "rotation_schedule": "0 * * * *"}
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not supported by the devstack emulator"):
        db.adapter.post("/v1/database/static-roles/app", json=body)
