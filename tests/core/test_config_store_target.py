"""A mapping's target can be the account's Secrets Store: its table, its rules, its ``Target``."""

from __future__ import annotations

import pytest

from syncd.config import parse_config
from syncd.errors import ConfigError
from syncd.model import DestinationKind, Target
from tests.core.test_config import ACCOUNT, BASE


def _mapping(name: str, target: str, bindings: str = 'secret_text = { keys = { password = "db-password" } }') -> str:
    return f"""
[[mapping]]
name = "{name}"
vault = {{ mount = "secret", path = "{name}" }}
target = {target}
{bindings}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "syncd.toml")
    return [str(p) for p in info.value.problems]


def test_a_store_target_names_the_store_and_its_secrets() -> None:
    settings = parse_config(
        BASE
        + _mapping("shared", '{ secrets_store = "default_secrets_store", scopes = ["workers", "ai_gateway"] }')
        + _mapping("other", f'{{ secrets_store = "default_secrets_store", account_id = "{"b" * 32}", adopt = true }}')
    )
    shared, other = settings.mappings
    assert settings.target_of(shared) == Target(ACCOUNT, "default_secrets_store", kind=DestinationKind.SECRETS_STORE)
    assert settings.target_of(other) == Target("b" * 32, "default_secrets_store", kind=DestinationKind.SECRETS_STORE)
    assert shared.target.scopes == ("workers", "ai_gateway") and not shared.target.adopt
    assert other.target.scopes == ("workers",) and other.target.adopt
    assert shared.static_binding_names() == ["db-password"]  # the store's names allow '-'


def test_store_rules_are_named_in_one_pass() -> None:
    problems = _problems(
        BASE
        + _mapping("both", '{ script = "api", secrets_store = "default" }')
        + _mapping("neither", '{ account_id = "' + ACCOUNT + '" }')
        + _mapping("ns", '{ secrets_store = "default", dispatch_namespace = "tenants" }')
        + _mapping("script-adopts", '{ script = "api", adopt = true, scopes = ["workers"] }')
        + _mapping("no-scopes", '{ secrets_store = "default", scopes = [] }')
        + _mapping("bad-scope", '{ secrets_store = "default", scopes = ["kv"] }')
        + _mapping("bad-name", '{ secrets_store = "default" }', 'secret_text = { keys = { k = "db.password" } }')
        + _mapping(
            "key-binding",
            '{ secrets_store = "default" }',
            """[[mapping.secret_key]]
vault_key = "k"
binding = "SIGNING"
format = "raw"
algorithm = { name = "HMAC", hash = "SHA-256" }
usages = ["sign"]""",
        )
    )
    text = "\n".join(problems)
    assert "mapping 'both', key 'target': give exactly one of script" in text
    assert "mapping 'neither', key 'target': give exactly one of script" in text
    assert "mapping 'ns', key 'target.dispatch_namespace': a Secrets Store is not in a dispatch namespace" in text
    assert "mapping 'script-adopts', key 'target.adopt': adopt applies only to a secrets_store target" in text
    assert "mapping 'script-adopts', key 'target.scopes'" in text
    assert "mapping 'no-scopes', key 'target.scopes'" in text and "at least one scope" in text
    assert "mapping 'bad-scope', key 'target.scopes.0'" in text
    assert "mapping 'bad-name', key 'secret_text.keys.k': 'db.password' is not a valid store secret name" in text
    assert "mapping 'key-binding', key 'secret_key': a Secrets Store holds text" in text


def test_one_store_named_by_name_and_by_id_is_caught_as_one() -> None:
    store_id = "f" * 32
    problems = _problems(
        BASE
        + _mapping("by-name", '{ secrets_store = "default" }')
        + _mapping("by-id", f'{{ secrets_store = "{store_id}" }}')
    )
    assert problems == [
        "syncd.toml: mapping 'by-id', key 'secret_text.keys.password': binding 'db-password' on "
        f"{ACCOUNT}/secrets_store/{store_id} is also written by mapping 'by-name' (as "
        f"{ACCOUNT}/secrets_store/default: an account has one Secrets Store)"
    ]


def test_a_script_target_still_wants_javascript_identifiers() -> None:
    problems = _problems(BASE + _mapping("script", '{ script = "api" }'))
    assert problems == [
        "syncd.toml: mapping 'script', key 'secret_text.keys.password': 'db-password' is not a valid binding "
        "name: a binding name must be a JavaScript identifier (letters, digits, _ and $, not starting with a "
        "digit) and not a reserved word, e.g. API_KEY"
    ]


def test_two_mappings_writing_one_store_secret_is_a_config_error_but_a_script_of_that_name_is_not() -> None:
    problems = _problems(
        BASE
        + _mapping("first", '{ secrets_store = "default" }')
        + _mapping("second", '{ secrets_store = "default" }')
        + _mapping("script", '{ script = "default" }', 'secret_text = { keys = { k = "db_password" } }')
        + _mapping("third", '{ secrets_store = "default" }', 'secret_text = { keys = { k = "db_password" } }')
    )
    assert problems == [
        "syncd.toml: mapping 'second', key 'secret_text.keys.password': binding 'db-password' on "
        f"{ACCOUNT}/secrets_store/default is also written by mapping 'first'"
    ]
