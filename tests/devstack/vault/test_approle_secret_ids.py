"""AppRole secret-id management through hvac's approle methods (issue 11, item 9).

Each operation is driven by hvac (the independent client) and the status codes and bodies are
pinned to hashicorp/vault ``builtin/credential/approle/path_role.go`` (see the module docstring of
``syncd.devstack.vault.approle_secret_ids``).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import hvac
import hvac.exceptions
import pytest

from syncd.devstack.vault import VaultEmulator

CUSTOM = "canary-custom-secret-id-5d1f"


@pytest.fixture
def role_id(root: hvac.Client) -> str:
    root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("syncd", token_policies=["default"], secret_id_ttl="1h")
    return str(root.auth.approle.read_role_id("syncd")["data"]["role_id"])


def test_a_custom_secret_id_logs_in_and_cannot_be_registered_twice(
    root: hvac.Client, role_id: str, client_for: Callable[..., hvac.Client]
) -> None:
    issued = root.auth.approle.create_custom_secret_id("syncd", CUSTOM, metadata={"team": "platform"})["data"]
    assert set(issued) == {"secret_id", "secret_id_accessor", "secret_id_ttl", "secret_id_num_uses"}
    assert issued["secret_id"] == CUSTOM and issued["secret_id_ttl"] == 3600
    auth = client_for(None).auth.approle.login(role_id=role_id, secret_id=CUSTOM)["auth"]
    assert auth["metadata"] == {"role_name": "syncd", "team": "platform"}
    with pytest.raises(hvac.exceptions.InternalServerError, match="SecretID is already registered"):
        root.auth.approle.create_custom_secret_id("syncd", CUSTOM)


def test_lookup_by_secret_id_and_by_accessor_describe_it(root: hvac.Client, role_id: str, vault: VaultEmulator) -> None:
    issued = root.auth.approle.generate_secret_id("syncd", metadata={"env": "dev"})["data"]
    by_value = root.auth.approle.read_secret_id("syncd", issued["secret_id"])["data"]
    by_accessor = root.auth.approle.read_secret_id_accessor("syncd", issued["secret_id_accessor"])["data"]
    assert by_value == by_accessor
    assert sorted(by_value) == [
        "cidr_list",
        "creation_time",
        "expiration_time",
        "last_updated_time",
        "metadata",
        "secret_id_accessor",
        "secret_id_num_uses",
        "secret_id_ttl",
        "token_bound_cidrs",
    ]
    assert by_value["secret_id_accessor"] == issued["secret_id_accessor"]
    assert by_value["metadata"] == {"env": "dev"}
    assert by_value["secret_id_ttl"] == 3600 and by_value["secret_id_num_uses"] == 0
    assert by_value["creation_time"].startswith("2025-10-09T08:53:20.") and by_value["creation_time"].endswith("Z")
    assert by_value["expiration_time"].startswith("2025-10-09T09:53:20.")
    assert by_value["cidr_list"] == [] and by_value["token_bound_cidrs"] == []
    assert "secret_id" not in by_value  # a lookup never returns the secret itself
    vault.state.clock.advance(3601)
    assert root.auth.approle.read_secret_id("syncd", issued["secret_id"]).status_code == 204


def test_an_unknown_secret_id_looks_up_as_no_content_and_destroys_quietly(root: hvac.Client, role_id: str) -> None:
    assert root.auth.approle.read_secret_id("syncd", "not-issued").status_code == 204
    assert root.auth.approle.destroy_secret_id("syncd", "not-issued").status_code == 204


def test_destroy_by_secret_id_ends_its_logins(
    root: hvac.Client, role_id: str, client_for: Callable[..., hvac.Client]
) -> None:
    secret_id = root.auth.approle.generate_secret_id("syncd")["data"]["secret_id"]
    assert root.auth.approle.destroy_secret_id("syncd", secret_id).status_code == 204
    assert root.auth.approle.read_secret_id("syncd", secret_id).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        client_for(None).auth.approle.login(role_id=role_id, secret_id=secret_id)


def test_destroy_by_accessor_and_the_accessor_list(
    root: hvac.Client, role_id: str, client_for: Callable[..., hvac.Client]
) -> None:
    first = root.auth.approle.generate_secret_id("syncd")["data"]
    second = root.auth.approle.generate_secret_id("syncd")["data"]
    listed = root.auth.approle.list_secret_id_accessors("syncd")["data"]["keys"]
    assert sorted(listed) == sorted([first["secret_id_accessor"], second["secret_id_accessor"]])
    assert root.auth.approle.destroy_secret_id_accessor("syncd", first["secret_id_accessor"]).status_code == 204
    assert root.auth.approle.list_secret_id_accessors("syncd")["data"]["keys"] == [second["secret_id_accessor"]]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client_for(None).auth.approle.login(role_id=role_id, secret_id=first["secret_id"])
    assert client_for(None).auth.approle.login(role_id=role_id, secret_id=second["secret_id"])["auth"]


def test_an_unknown_accessor_is_404_on_lookup_and_500_on_destroy(root: hvac.Client, role_id: str) -> None:
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.auth.approle.read_secret_id_accessor("syncd", "no-such-accessor")
    with pytest.raises(hvac.exceptions.InternalServerError, match="failed to find accessor entry"):
        root.auth.approle.destroy_secret_id_accessor("syncd", "no-such-accessor")


def test_wire_bodies_of_the_error_cases(vault: VaultEmulator, role_id: str) -> None:
    headers = {"X-Vault-Token": vault.root_token}
    base = vault.url + "/v1/auth/approle/role/"
    lookup = httpx.post(base + "syncd/secret-id-accessor/lookup", json={"secret_id_accessor": "x"}, headers=headers)
    assert lookup.status_code == 404
    assert lookup.json()["data"] == {"error": 'failed to find accessor entry for secret_id_accessor: "x"'}
    destroy = httpx.post(base + "syncd/secret-id-accessor/destroy", json={"secret_id_accessor": "x"}, headers=headers)
    assert destroy.status_code == 500
    assert destroy.json() == {
        "errors": ['1 error occurred:\n\t* failed to find accessor entry for secret_id_accessor: "x"\n\n']
    }
    missing = httpx.post(base + "syncd/secret-id/lookup", json={}, headers=headers)
    assert (missing.status_code, missing.json()) == (400, {"errors": ["missing secret_id"]})
    no_role = httpx.post(base + "ghost/secret-id/lookup", json={"secret_id": "s"}, headers=headers)
    assert (no_role.status_code, no_role.json()) == (
        500,
        {"errors": ['1 error occurred:\n\t* role "ghost" does not exist\n\n']},
    )
    deleted = httpx.delete(base + "syncd/secret-id/destroy", params={"secret_id": "s"}, headers=headers)
    assert deleted.status_code == 204
