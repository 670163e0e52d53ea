"""``syncd devstack --db-role NAME[:PERIOD]``: a database static role seeded in the Vault emulator."""

from __future__ import annotations

import hvac
import pytest

from syncd.devstack.cli import EXIT_USAGE, main
from syncd.devstack.stack import Devstack
from syncd.devstack.vault.database_rotation import parse_role_spec

pytestmark = pytest.mark.integration


def test_parse_role_spec_defaults_the_period() -> None:
    assert parse_role_spec("app") == ("app", "1h")
    assert parse_role_spec("app:30s") == ("app", "30s")
    with pytest.raises(ValueError, match="NAME"):
        parse_role_spec(":1h")


def test_the_devstack_seeds_readable_static_roles() -> None:
    with Devstack(db_roles=["app:30s", "reports"]) as stack:
        client = hvac.Client(url=stack.vault.url, token=stack.vault.root_token)
        app = client.secrets.database.get_static_credentials("app")["data"]
        assert (app["username"], app["rotation_period"], app["ttl"]) == ("app", 30, 30)
        reports = client.secrets.database.read_static_role("reports")["data"]
        assert reports["rotation_period"] == 3600 and reports["db_name"] == "devdb"
        assert client.secrets.database.list_static_roles()["data"]["keys"] == ["app", "reports"]


def test_a_period_vault_would_refuse_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--vault-port", "0", "--cloudflare-port", "0", "--db-role", "app:2s"])
    assert code == EXIT_USAGE
    assert "rotation_period must be 5 seconds or more" in capsys.readouterr().err
