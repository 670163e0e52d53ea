"""ACL policies: parsing, Vault's priority rules, and enforcement on every request."""

from __future__ import annotations

from collections.abc import Callable

import hvac
import hvac.exceptions
import pytest

from syncd.devstack.vault.policy import Acl, parse_policy
from syncd.devstack.vault.wire import VaultError

from .conftest import token_with_policy


def test_parse_reads_path_blocks_comments_and_legacy_policy() -> None:
    rules = parse_policy(
        """
        # a comment
        path "secret/data/app/*" {
          capabilities = ["read", "list"]  // trailing comment
        }
        path "old/+/thing" { policy = "write" }
        path "sys/*" {
          capabilities = ["deny"]
          allowed_parameters = { "x" = [] }
        }
        """
    )
    by_pattern = {rule.pattern: rule.capabilities for rule in rules}
    assert by_pattern["secret/data/app/*"] == {"read", "list"}
    assert by_pattern["old/+/thing"] == {"create", "read", "update", "delete", "list"}
    assert by_pattern["sys/*"] == {"deny"}


def test_parse_rejects_unknown_capabilities() -> None:
    with pytest.raises(VaultError, match="invalid capability"):
        parse_policy('path "x" { capabilities = ["fly"] }')


def test_parse_accepts_json_policies() -> None:
    rules = parse_policy('{"path": {"secret/*": {"capabilities": ["read"]}}}')
    assert rules[0].capabilities == {"read"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("secret/data/app/db", {"read"}),  # exact beats globs
        ("secret/data/app/other", {"read", "list"}),  # longer glob beats shorter
        ("secret/data/x", {"update"}),
        # same first-wildcard position and both end in *: the rule with more + loses (rule 3)
        ("secret/data/team/prod/key", {"update"}),
        ("secret/data/app/prod/key", {"read", "list"}),
        ("secret/data/app/secret/deep", {"deny"}),
        ("nothing/here", set()),
    ],
)
def test_most_specific_rule_wins(path: str, expected: set[str]) -> None:
    acl = Acl(
        [
            """
            path "secret/data/*" { capabilities = ["update"] }
            path "secret/data/app/*" { capabilities = ["read", "list"] }
            path "secret/data/app/db" { capabilities = ["read"] }
            path "secret/data/+/prod/*" { capabilities = ["create"] }
            path "secret/data/app/secret/*" { capabilities = ["deny"] }
            """
        ]
    )
    assert acl.capabilities(path) == expected


def test_wildcard_segment_loses_to_a_glob_whose_wildcard_comes_later() -> None:
    acl = Acl(['path "a/+/c" { capabilities = ["read"] }', 'path "a/b/*" { capabilities = ["list"] }'])
    assert acl.capabilities("a/b/c") == {"list"}


def test_rules_for_the_same_path_merge_across_policies_and_deny_wins() -> None:
    merged = Acl(['path "s/*" { capabilities = ["read"] }', 'path "s/*" { capabilities = ["list"] }'])
    denied = Acl(['path "s/*" { capabilities = ["read"] }', 'path "s/*" { capabilities = ["deny"] }'])
    assert merged.capabilities("s/x") == {"read", "list"}
    assert denied.capabilities("s/x") == {"deny"}


def test_read_only_policy_allows_reads_and_forbids_writes(
    root: hvac.Client, client_for: Callable[..., hvac.Client]
) -> None:
    root.secrets.kv.v2.create_or_update_secret("app/db", secret={"pw": "x"})
    token = token_with_policy(
        root,
        "reader",
        'path "secret/data/app/*" { capabilities = ["read"] }\n'
        'path "secret/metadata/app/*" { capabilities = ["list", "read"] }',
    )
    client = client_for(token)

    assert client.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)["data"]["data"]
    assert client.secrets.kv.v2.read_secret_metadata("app/db")["data"]["current_version"] == 1
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.create_or_update_secret("app/db", secret={"pw": "y"})
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.read_secret_version("other", raise_on_deleted_version=True)


def test_create_versus_update_follows_existence(root: hvac.Client, client_for: Callable[..., hvac.Client]) -> None:
    root.secrets.kv.v2.create_or_update_secret("exists", secret={"a": "1"})
    token = token_with_policy(root, "creator", 'path "secret/data/*" { capabilities = ["create"] }')
    client = client_for(token)

    client.secrets.kv.v2.create_or_update_secret("brand-new", secret={"a": "1"})
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.create_or_update_secret("exists", secret={"a": "2"})


def test_list_capability_is_checked_on_the_folder_path(
    root: hvac.Client, client_for: Callable[..., hvac.Client]
) -> None:
    root.secrets.kv.v2.create_or_update_secret("app/one", secret={"a": "1"})
    token = token_with_policy(root, "lister", 'path "secret/metadata/app/" { capabilities = ["list"] }')
    assert client_for(token).secrets.kv.v2.list_secrets("app")["data"]["keys"] == ["one"]
    with pytest.raises(hvac.exceptions.Forbidden):
        client_for(token).secrets.kv.v2.read_secret_metadata("app/one")


def test_default_policy_allows_self_service_only(root: hvac.Client, client_for: Callable[..., hvac.Client]) -> None:
    token = root.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    client = client_for(token)
    assert client.auth.token.lookup_self()["data"]["policies"] == ["default"]
    assert client.auth.token.renew_self()["auth"]["lease_duration"] == 3600
    with pytest.raises(hvac.exceptions.Forbidden):
        client.sys.list_mounted_secrets_engines()


def test_sudo_is_required_to_enable_auth_methods(root: hvac.Client, client_for: Callable[..., hvac.Client]) -> None:
    plain = token_with_policy(root, "authadmin", 'path "sys/auth/*" { capabilities = ["create", "update"] }')
    sudo = token_with_policy(root, "authsudo", 'path "sys/auth/*" { capabilities = ["create", "update", "sudo"] }')
    with pytest.raises(hvac.exceptions.Forbidden):
        client_for(plain).sys.enable_auth_method("approle")
    client_for(sudo).sys.enable_auth_method("approle")


def test_acl_policy_endpoints_round_trip(root: hvac.Client) -> None:
    text = 'path "secret/*" { capabilities = ["read"] }'
    root.sys.create_or_update_acl_policy(name="Team", policy=text)

    assert root.sys.read_acl_policy("team")["data"] == {"name": "team", "policy": text}
    assert root.sys.list_acl_policies()["data"]["keys"] == ["default", "root", "team"]
    root.sys.delete_acl_policy("team")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.sys.read_acl_policy("team")


def test_legacy_policy_endpoints_round_trip(root: hvac.Client) -> None:
    text = 'path "kv/*" { capabilities = ["read"] }'
    root.sys.create_or_update_policy(name="legacy", policy=text)

    assert root.sys.read_policy("legacy")["rules"] == text
    assert "legacy" in root.sys.list_policies()["policies"]
    root.sys.delete_policy("legacy")
    assert "legacy" not in root.sys.list_policies()["data"]["keys"]


def test_invalid_policy_and_protected_policies_are_rejected(root: hvac.Client) -> None:
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.create_or_update_acl_policy(name="bad", policy='path "x" { capabilities = ["nope"] }')
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.delete_acl_policy("default")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.create_or_update_acl_policy(name="root", policy='path "x" { capabilities = ["read"] }')


def test_policy_change_applies_to_existing_tokens(root: hvac.Client, client_for: Callable[..., hvac.Client]) -> None:
    root.secrets.kv.v2.create_or_update_secret("later", secret={"a": "1"})
    token = token_with_policy(root, "evolving", 'path "nothing/*" { capabilities = ["read"] }')
    with pytest.raises(hvac.exceptions.Forbidden):
        client_for(token).secrets.kv.v2.read_secret_version("later", raise_on_deleted_version=True)
    root.sys.create_or_update_acl_policy(name="evolving", policy='path "secret/data/*" { capabilities = ["read"] }')
    assert client_for(token).secrets.kv.v2.read_secret_version("later", raise_on_deleted_version=True)
