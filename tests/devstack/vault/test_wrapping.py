"""Response wrapping through hvac: ``X-Vault-Wrap-TTL`` (``wrap_ttl=``), ``sys.unwrap``, ``sys.wrap``,
and ``sys/wrapping/lookup`` / ``rewrap`` through hvac's adapter (hvac has no wrapper for those).

Shapes and texts as in Vault's HTTP layer and core (kept by OpenBao): ``respondLogical`` for the
wrapped answer, ``validateWrappingToken`` and ``consts.ErrInvalidWrappingToken`` for refusals; see
``syncd.devstack.vault.wrapping``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import hvac
import hvac.exceptions
import pytest

from syncd.devstack.vault import VaultEmulator
from syncd.devstack.vault.wire import rfc3339
from tests.devstack.vault.conftest import token_with_policy

pytestmark = pytest.mark.integration

CANARY = "canary-wrapped-value-91c2"
INVALID = ["wrapping token is not valid or does not exist"]


@pytest.fixture
def wrapped_read(root: hvac.Client) -> dict[str, Any]:
    root.secrets.kv.v2.create_or_update_secret("app", secret={"api_key": CANARY})
    answer = root.adapter.get("/v1/secret/data/app", wrap_ttl="5m")
    assert isinstance(answer, dict)
    return answer


def test_a_wrapped_kv_read_answers_wrap_info_only(wrapped_read: dict[str, Any], vault: VaultEmulator) -> None:
    assert wrapped_read == {
        "request_id": "",
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": None,
        "wrap_info": {
            "token": wrapped_read["wrap_info"]["token"],
            "accessor": wrapped_read["wrap_info"]["accessor"],
            "ttl": 300,
            "creation_time": rfc3339(vault.state.clock.now()),
            "creation_path": "secret/data/app",
        },
        "warnings": None,
        "auth": None,
        "mount_type": "",
    }
    assert wrapped_read["wrap_info"]["token"].startswith("hvs.")
    assert CANARY not in json.dumps(wrapped_read)


def test_unwrap_returns_the_original_response_once(wrapped_read: dict[str, Any], root: hvac.Client) -> None:
    token = wrapped_read["wrap_info"]["token"]
    original = root.sys.unwrap(token)
    assert original["data"]["data"] == {"api_key": CANARY}
    assert original["data"]["metadata"]["version"] == 1
    assert original["mount_type"] == "kv" and original["wrap_info"] is None and original["request_id"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as again:
        root.sys.unwrap(token)
    assert again.value.errors == INVALID


def test_the_wrapping_token_can_unwrap_itself_and_do_nothing_else(
    wrapped_read: dict[str, Any], client_for: Callable[[str | None], hvac.Client]
) -> None:
    holder = client_for(wrapped_read["wrap_info"]["token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        holder.secrets.kv.v2.read_secret_version("app", raise_on_deleted_version=True)
    assert holder.sys.unwrap()["data"]["data"] == {"api_key": CANARY}
    with pytest.raises(hvac.exceptions.InvalidRequest) as spent:
        holder.sys.unwrap()
    assert spent.value.errors == INVALID


def test_a_wrapping_token_expires_on_the_emulator_clock(
    wrapped_read: dict[str, Any], root: hvac.Client, vault: VaultEmulator
) -> None:
    token = wrapped_read["wrap_info"]["token"]
    vault.state.clock.advance(299)
    assert root.adapter.post("/v1/sys/wrapping/lookup", json={"token": token})["data"]["creation_ttl"] == 300
    vault.state.clock.advance(1)
    with pytest.raises(hvac.exceptions.InvalidRequest) as expired:
        root.sys.unwrap(token)
    assert expired.value.errors == INVALID


def test_lookup_needs_no_client_token_and_does_not_spend_the_token(
    wrapped_read: dict[str, Any], client_for: Callable[[str | None], hvac.Client], vault: VaultEmulator
) -> None:
    token = wrapped_read["wrap_info"]["token"]
    anonymous = client_for(None)
    info = anonymous.adapter.post("/v1/sys/wrapping/lookup", json={"token": token})["data"]
    assert info == {
        "creation_path": "secret/data/app",
        "creation_time": rfc3339(vault.state.clock.now()),
        "creation_ttl": 300,
    }
    assert client_for(token).adapter.get("/v1/sys/wrapping/lookup")["data"] == info
    assert client_for(token).sys.unwrap()["data"]["data"] == {"api_key": CANARY}


def test_rewrap_moves_the_response_to_a_new_token(wrapped_read: dict[str, Any], root: hvac.Client) -> None:
    old = wrapped_read["wrap_info"]["token"]
    rewrapped = root.adapter.post("/v1/sys/wrapping/rewrap", json={"token": old})["wrap_info"]
    assert rewrapped["token"] != old
    assert (rewrapped["ttl"], rewrapped["creation_path"]) == (300, "secret/data/app")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.unwrap(old)
    assert root.sys.unwrap(rewrapped["token"])["data"]["data"] == {"api_key": CANARY}


def test_sys_wrap_wraps_what_it_is_given(root: hvac.Client) -> None:
    wrapped = root.sys.wrap(payload={"note": CANARY}, ttl=60)["wrap_info"]
    assert (wrapped["ttl"], wrapped["creation_path"]) == (60, "sys/wrapping/wrap")
    assert root.sys.unwrap(wrapped["token"])["data"] == {"note": CANARY}
    with pytest.raises(hvac.exceptions.InvalidRequest) as unwrapped:
        root.adapter.post("/v1/sys/wrapping/wrap", json={"note": "x"})
    assert unwrapped.value.errors == ["endpoint requires response wrapping to be used"]


def test_a_wrapped_approle_secret_id_unwraps_and_logs_in(
    root: hvac.Client, client_for: Callable[[str | None], hvac.Client]
) -> None:
    root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("syncd", token_policies=["default"])
    role_id = root.auth.approle.read_role_id("syncd")["data"]["role_id"]
    wrap_info = root.auth.approle.generate_secret_id("syncd", wrap_ttl="2m")["wrap_info"]
    assert wrap_info["creation_path"] == "auth/approle/role/syncd/secret-id"
    secret = client_for(wrap_info["token"]).sys.unwrap()  # the delivered token unwraps itself
    assert wrap_info["wrapped_accessor"] == secret["data"]["secret_id_accessor"]
    login = client_for(None).auth.approle.login(role_id=role_id, secret_id=secret["data"]["secret_id"])
    assert login["auth"]["metadata"] == {"role_name": "syncd"}


def test_a_wrapped_login_names_the_new_tokens_accessor(
    root: hvac.Client, client_for: Callable[[str | None], hvac.Client]
) -> None:
    root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("syncd", token_policies=["default"], bind_secret_id=False)
    role_id = root.auth.approle.read_role_id("syncd")["data"]["role_id"]
    anonymous = client_for(None)
    wrap_info = anonymous.adapter.post("/v1/auth/approle/login", json={"role_id": role_id}, wrap_ttl=60)["wrap_info"]
    auth = root.sys.unwrap(wrap_info["token"])["auth"]
    assert wrap_info["wrapped_accessor"] == auth["accessor"]
    assert client_for(auth["client_token"]).auth.token.lookup_self()["data"]["accessor"] == auth["accessor"]


def test_a_wrapped_static_credential(root: hvac.Client) -> None:
    root.sys.enable_secrets_engine("database")
    root.secrets.database.configure("pg", "postgresql-database-plugin", allowed_roles="*")
    root.secrets.database.create_static_role("app", "pg", "app-user", [], 3600)
    password = root.secrets.database.get_static_credentials("app")["data"]["password"]
    wrap_info = root.adapter.get("/v1/database/static-creds/app", wrap_ttl="1m")["wrap_info"]
    unwrapped = root.sys.unwrap(wrap_info["token"])
    assert unwrapped["data"]["password"] == password and unwrapped["mount_type"] == "database"


def test_a_response_without_a_body_is_not_wrapped(http: httpx.Client) -> None:
    written = http.post("/v1/kv/plain", json={"a": "b"}, headers={"X-Vault-Wrap-TTL": "60"})
    assert written.status_code == 204 and written.content == b""


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("abc", 'error parsing X-Vault-Wrap-TTL header: time: invalid duration "abc"'),
        ("-5s", "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative"),
    ],
)
def test_a_bad_wrap_ttl_header_is_refused_before_any_token_check(
    vault: VaultEmulator, header: str, message: str
) -> None:
    answer = httpx.get(f"{vault.url}/v1/secret/data/app", headers={"X-Vault-Wrap-TTL": header})
    assert answer.status_code == 400 and answer.json() == {"errors": [message]}


def test_unwrap_refusals(root: hvac.Client, client_for: Callable[[str | None], hvac.Client]) -> None:
    with pytest.raises(hvac.exceptions.Forbidden) as no_token:
        client_for(None).sys.unwrap()
    assert no_token.value.errors == ["error validating wrapping token: token is empty"]
    with pytest.raises(hvac.exceptions.Forbidden) as empty:
        root.sys.unwrap("")
    assert empty.value.errors == ["error validating wrapping token: empty token in request body"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as not_wrapping:
        root.sys.unwrap()  # the root token is no wrapping token
    assert not_wrapping.value.errors == INVALID
    with pytest.raises(hvac.exceptions.InvalidRequest) as unknown:
        client_for(None).sys.unwrap("hvs.not-a-token")
    assert unknown.value.errors == INVALID


def test_unwrapping_for_someone_else_needs_the_policy(
    wrapped_read: dict[str, Any], root: hvac.Client, client_for: Callable[[str | None], hvac.Client]
) -> None:
    token = wrapped_read["wrap_info"]["token"]
    bare = token_with_policy(root, "nothing", 'path "secret/*" { capabilities = ["deny"] }', no_default_policy=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        client_for(bare).sys.unwrap(token)
    with_default = token_with_policy(root, "reader", 'path "secret/*" { capabilities = ["deny"] }')
    assert client_for(with_default).sys.unwrap(token)["data"]["data"] == {"api_key": CANARY}


def test_the_audit_log_records_wrap_info_hashed(root: hvac.Client, vault: VaultEmulator, tmp_path: Path) -> None:
    audit_log = tmp_path / "audit.log"
    root.sys.enable_audit_device("file", options={"file_path": str(audit_log), "skip_test": "true"})
    root.secrets.kv.v2.create_or_update_secret("app", secret={"api_key": CANARY})
    token = root.adapter.get("/v1/secret/data/app", wrap_ttl=90)["wrap_info"]["token"]
    assert vault.audit.wait_idle()
    entries = [json.loads(line) for line in audit_log.read_text().splitlines()]
    wrapped = [e for e in entries if e["type"] == "response" and "wrap_info" in e.get("response", {})]
    assert len(wrapped) == 1
    assert wrapped[0]["request"]["wrap_ttl"] == 90
    assert wrapped[0]["response"]["wrap_info"]["token"].startswith("hmac-sha256:")
    assert "data" not in wrapped[0]["response"]
    text = audit_log.read_text()
    assert token not in text and CANARY not in text
