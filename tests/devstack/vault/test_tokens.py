"""Tokens through hvac: create, lookup, renew (capped at max TTL), revoke, expiry by the clock."""

from __future__ import annotations

from collections.abc import Callable

import hvac
import hvac.exceptions
import pytest

from syncd.devstack.vault import VaultEmulator


def test_root_token_looks_up_as_root_without_expiry(root: hvac.Client, vault: VaultEmulator) -> None:
    data = root.auth.token.lookup_self()["data"]
    assert data["id"] == vault.root_token
    assert data["policies"] == ["root"]
    assert data["expire_time"] is None
    assert data["ttl"] == 0


def test_explicit_root_token_is_used(client_for: Callable[[str | None], hvac.Client]) -> None:
    with VaultEmulator(root_token="my-root") as emulator:
        client = hvac.Client(url=emulator.url, token="my-root")
        assert client.auth.token.lookup_self()["data"]["id"] == "my-root"


def test_generated_root_token_has_vault_prefix(vault: VaultEmulator) -> None:
    assert vault.root_token.startswith("hvs.")


def test_created_token_carries_policies_ttl_and_meta(root: hvac.Client, client_for: Callable[..., hvac.Client]) -> None:
    root.sys.create_or_update_acl_policy(name="reader", policy='path "secret/*" { capabilities = ["read"] }')
    auth = root.auth.token.create(policies=["reader"], ttl="1h", meta={"team": "platform"}, display_name="ci")["auth"]

    assert auth["policies"] == ["default", "reader"]
    assert auth["token_policies"] == ["default", "reader"]
    assert auth["lease_duration"] == 3600
    assert auth["renewable"] is True
    assert auth["token_type"] == "service"
    assert auth["metadata"] == {"team": "platform"}
    looked_up = client_for(auth["client_token"]).auth.token.lookup_self()["data"]
    assert looked_up["display_name"] == "token-ci"
    assert looked_up["ttl"] == 3600
    assert looked_up["expire_time"].endswith("Z")
    assert looked_up["orphan"] is False


def test_lookup_another_token(root: hvac.Client) -> None:
    token = root.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    assert root.auth.token.lookup(token)["data"]["ttl"] == 600


def test_token_expires_by_the_emulator_clock(
    vault: VaultEmulator, root: hvac.Client, client_for: Callable[..., hvac.Client]
) -> None:
    token = root.auth.token.create(policies=["default"], ttl="60s")["auth"]["client_token"]
    client = client_for(token)
    assert client.auth.token.lookup_self()["data"]["ttl"] == 60

    vault.state.clock.advance(61)

    with pytest.raises(hvac.exceptions.Forbidden, match="invalid token"):
        client.auth.token.lookup_self()


def test_renew_self_extends_the_ttl(
    vault: VaultEmulator, root: hvac.Client, client_for: Callable[..., hvac.Client]
) -> None:
    token = root.auth.token.create(policies=["default"], ttl="60s")["auth"]["client_token"]
    client = client_for(token)
    vault.state.clock.advance(50)

    renewed = client.auth.token.renew_self(increment="120s")

    assert renewed["auth"]["lease_duration"] == 120
    assert renewed["data"] is None
    vault.state.clock.advance(100)
    assert client.auth.token.lookup_self()["data"]["ttl"] == 20


def test_renew_past_max_ttl_is_capped_with_a_warning(
    vault: VaultEmulator, root: hvac.Client, client_for: Callable[..., hvac.Client]
) -> None:
    token = root.auth.token.create(policies=["default"], ttl="1h", explicit_max_ttl="2h")["auth"]["client_token"]
    client = client_for(token)
    vault.state.clock.advance(3000)

    renewed = client.auth.token.renew_self(increment="2h")

    left = 7200 - 3000
    assert renewed["auth"]["lease_duration"] == left
    assert renewed["warnings"] == [
        'TTL of "2h0m0s" exceeded the effective max_ttl of "1h10m0s"; TTL value is capped accordingly'
    ]


def test_periodic_token_renews_to_its_period(
    vault: VaultEmulator, root: hvac.Client, client_for: Callable[..., hvac.Client]
) -> None:
    auth = root.auth.token.create(policies=["default"], period="30m")["auth"]
    assert auth["lease_duration"] == 1800
    vault.state.clock.advance(1000)
    assert client_for(auth["client_token"]).auth.token.renew_self(increment="5h")["auth"]["lease_duration"] == 1800


def test_non_renewable_token_cannot_renew(root: hvac.Client, client_for: Callable[..., hvac.Client]) -> None:
    token = root.auth.token.create(policies=["default"], ttl="1h", renewable=False)["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not renewable"):
        client_for(token).auth.token.renew_self()


def test_revoke_self_invalidates_the_token_and_its_children(
    root: hvac.Client, client_for: Callable[..., hvac.Client]
) -> None:
    root.sys.create_or_update_acl_policy(name="minter", policy='path "auth/token/create" { capabilities = ["update"] }')
    parent = root.auth.token.create(policies=["minter"], ttl="1h")["auth"]["client_token"]
    child = client_for(parent).auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]

    client_for(parent).auth.token.revoke_self()

    for token in (parent, child):
        with pytest.raises(hvac.exceptions.Forbidden):
            client_for(token).auth.token.lookup_self()


def test_child_policies_must_be_a_subset(root: hvac.Client, client_for: Callable[..., hvac.Client]) -> None:
    root.sys.create_or_update_acl_policy(name="minter", policy='path "auth/token/create" { capabilities = ["update"] }')
    parent = root.auth.token.create(policies=["minter"], ttl="1h")["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="subset"):
        client_for(parent).auth.token.create(policies=["admin"])


def test_orphan_token_needs_root_or_sudo(root: hvac.Client, client_for: Callable[..., hvac.Client]) -> None:
    orphan = root.auth.token.create(policies=["default"], no_parent=True, ttl="1h")["auth"]
    assert orphan["orphan"] is True
    root.sys.create_or_update_acl_policy(name="minter", policy='path "auth/token/create" { capabilities = ["update"] }')
    parent = root.auth.token.create(policies=["minter"], ttl="1h")["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="root or sudo"):
        client_for(parent).auth.token.create(policies=["minter"], no_parent=True)


def test_token_without_create_capability_is_forbidden(
    root: hvac.Client, client_for: Callable[..., hvac.Client]
) -> None:
    token = root.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.Forbidden):
        client_for(token).auth.token.create(policies=["default"])
