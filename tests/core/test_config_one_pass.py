"""Issue 11, items 1-3: one pass finds every problem; no silent coercion; errors say what to write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from syncd.config import CloudflareApiToken, TokenAuth, load_config, parse_config
from syncd.config.strict import RuleProblem, StrictModel
from syncd.errors import ConfigError
from tests.core.test_config import ACCOUNT, BASE


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "syncd.toml")
    return [str(p) for p in info.value.problems]


def _one(text: str) -> str:
    problems = _problems(text)
    assert len(problems) == 1, problems
    return problems[0]


FOUR_ROUNDS = (
    BASE.replace('token = { env = "VAULT_TOKEN" }', 'token = { value = "hvs.canary-inline" }')
    + """
[server]
port = "8080"

[[mapping]]
name = "alpha"
vault = { mount = "secret", kv_version = 3 }
target = { script = "app" }

[[mapping]]
name = "beta"
vault = { mount = "secret", path = "b" }
target = { script = "app" }
secret_text = { keys = { api_key = "MY-API-KEY", webhook_secret = "1WEBHOOK", token = "TOKEN" } }
[[mapping.secret_key]]
vault_key = "k"
binding = "TOKEN"
format = "raw"
algorithm = { name = "HMAC", hash = "SHA-256" }
usages = ["sign"]

[[mapping]]
name = "beta"
vault = { mount = "secret", path = "c" }
target = { script = "app" }
secret_text = { json_binding = "TOKEN" }
"""
)


def test_every_problem_of_the_file_is_reported_in_one_pass() -> None:
    problems = _problems(FOUR_ROUNDS)
    expected = [
        # a credential refused inline, beside an unrelated type error
        "key 'vault.auth.token': inline credentials are refused",
        "key 'server.port': expected an integer: write port = 8080, without quotes",
        # structure and values of one mapping, and a rule across its fields
        "mapping 'alpha', key 'vault.path': missing: add path",
        "mapping 'alpha', key 'vault.kv_version': Input should be 'auto', 1 or 2",
        "mapping 'alpha', key '(mapping)': a mapping needs [mapping.secret_text]",
        # every bad binding name, not only the first
        "mapping 'beta', key 'secret_text.keys.api_key': 'MY-API-KEY' is not a valid binding name",
        "mapping 'beta', key 'secret_text.keys.webhook_secret': '1WEBHOOK' is not a valid binding name",
        # a duplicate binding inside a mapping, then the cross-references
        "mapping 'beta', key 'secret_key.0.binding': binding name 'TOKEN' is already used in this mapping",
        "mapping 'beta', key 'name': duplicate mapping name (also mapping[1])",
        "mapping 'beta', key 'secret_text.json_binding': binding 'TOKEN' on " + ACCOUNT + "/app is also written",
    ]
    for fragment in expected:
        assert sum(fragment in p for p in problems) == 1, (fragment, problems)
    assert len(problems) == len(expected), problems
    assert all(p.startswith("syncd.toml: ") for p in problems)
    assert not any("canary" in p for p in problems)


def test_a_bad_binding_name_says_what_a_good_one_is() -> None:
    text = BASE + (
        '\n[[mapping]]\nname = "m"\nvault = { mount = "secret", path = "a" }\ntarget = { script = "s" }\n'
        'secret_text = { keys = { k = "class" } }\n'
    )
    assert "JavaScript identifier" in _one(text) and "not a reserved word" in _one(text)


def test_a_huge_mapping_name_is_never_echoed_whole() -> None:
    name = "n" * 200_000
    text = BASE
    for _ in range(2):
        text += f'\n[[mapping]]\nname = "{name}"\nvault = {{ mount = "secret" }}\ntarget = {{ script = "s" }}\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, "syncd.toml")
    message = str(info.value)
    assert len(info.value.problems) >= 4
    assert all(len(line) < 500 for line in message.splitlines()), max(len(line) for line in message.splitlines())
    assert "n" * 79 + "\u2026" in message


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('[server]\nport = "8080"', "key 'server.port': expected an integer: write port = 8080, without quotes"),
        (
            '[server]\nenabled = "yes"',
            "key 'server.enabled': expected true or false: write enabled = true, without quotes",
        ),
        (
            '[sync]\ninterval_seconds = "30"',
            "key 'sync.interval_seconds': expected a number of seconds: write interval_seconds = 30, without quotes",
        ),
        (
            '[sync]\ninterval_seconds = "30s"',
            "key 'sync.interval_seconds': expected a number of seconds, e.g. interval_seconds = 30 "
            '(duration strings like "30s" are not supported)',
        ),
        ("[sync]\nprune = 1", "key 'sync.prune': expected true or false, e.g. prune = true"),
        ("[server]\nport = 80.5", "key 'server.port': expected an integer, e.g. port = 8080"),
        ("[server]\nbind = 8080", "key 'server.bind': expected a string in quotes"),
        ('[cloudflare]\nwrite_mode = "BULK"', "values are case-sensitive: write 'bulk'"),
        (
            '[[mapping]]\nname = "m"\nvault = { mount = "s", path = "p", kv_version = "2" }\n'
            'target = { script = "s" }\nsecret_text = { json_binding = "C" }',
            "key 'vault.kv_version': Input should be 'auto', 1 or 2 (a number: write kv_version = 2, without quotes)",
        ),
    ],
)
def test_types_are_strict_and_the_message_shows_the_accepted_form(snippet: str, expected: str) -> None:
    if snippet.startswith("[cloudflare]"):
        text = BASE.replace("[cloudflare]\n", snippet + "\n")
    else:
        text = BASE + "\n" + snippet + "\n"
    assert expected in _one(text)


def test_an_integer_is_a_valid_number_and_a_path_is_a_string() -> None:
    settings = parse_config(BASE + '\n[sync]\ninterval_seconds = 30\nstate_path = "/tmp/s.sqlite3"\n')
    assert settings.sync.interval_seconds == 30.0
    assert str(settings.sync.state_path) == "/tmp/s.sqlite3"


@pytest.mark.parametrize("level", ["INFO", "Info", "info"])
def test_log_level_is_case_insensitive(level: str) -> None:
    assert parse_config(BASE + f'\n[logging]\nlevel = "{level}"\n').logging.level == "info"


def test_a_string_where_a_credential_belongs_is_refused_with_the_forms_to_use() -> None:
    text = BASE.replace('token = { env = "VAULT_TOKEN" }', 'token = "hvs.canary-not-echoed"')
    problem = _one(text)
    assert problem == (
        "syncd.toml: key 'vault.auth.token': inline credentials are refused: a credential is a reference, "
        'write token = { env = "VAR" } or token = { file = "/path" }'
    )


@pytest.mark.parametrize("key", ["sync.fingerprint_key", "server.trigger_token"])
def test_inline_values_are_refused_for_every_credential_even_with_allow_elsewhere(key: str) -> None:
    section, name = key.split(".")
    text = BASE.replace("[cloudflare]\n", "[cloudflare]\nallow_inline_credentials = true\n")
    text += f'\n[{section}]\n{name} = {{ value = "canary-0123456789-0123456789-0123456789" }}\n'
    problem = _one(text)
    assert problem.startswith(f"syncd.toml: key '{key}': inline credentials are refused")
    assert problem.endswith("(this credential is never accepted inline)")
    assert "canary" not in problem


def test_inline_allowed_under_its_own_section_only() -> None:
    text = BASE.replace('token = { env = "VAULT_TOKEN" }', 'token = { value = "v" }').replace(
        "[vault]\n", "[vault]\nallow_inline_credentials = true\n"
    )
    assert isinstance(parse_config(text).vault.auth, TokenAuth)
    refused = text.replace('api_token = { env = "CF_TOKEN" }', 'api_token = { value = "c" }')
    problem = _one(refused)
    assert problem.startswith("syncd.toml: key 'cloudflare.auth.api_token': inline credentials are refused")
    assert problem.endswith("(allow_inline_credentials = true in this section permits it, for development only)")


def test_missing_auth_sections_default_to_the_clis_environment_variables() -> None:
    text = BASE.replace('[vault.auth]\nmethod = "token"\ntoken = { env = "VAULT_TOKEN" }\n', "").replace(
        '[cloudflare.auth]\napi_token = { env = "CF_TOKEN" }\n', ""
    )
    settings = parse_config(text)
    assert isinstance(settings.vault.auth, TokenAuth) and settings.vault.auth.token.env == "VAULT_TOKEN"
    assert isinstance(settings.cloudflare.auth, CloudflareApiToken)
    assert settings.cloudflare.auth.api_token.env == "CLOUDFLARE_API_TOKEN"
    assert set(settings.credential_defaults()) == {"vault.auth.token", "cloudflare.auth.api_token"}
    assert parse_config(BASE).credential_defaults() == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "key 'vault': missing: add a [vault] section, e.g. [vault] address = "),
        ("[vault]\n[cloudflare]\n", "key 'vault.address': missing: add address = "),
        ('[vault]\naddress = "http://v"\n[vault.auth]\nrole = "r"\n[cloudflare]\n', 'add method = "token"'),
        (
            '[vault]\naddress = "http://v"\n[cloudflare]\n[cloudflare.auth]\nemail = "a@b.c"\n',
            "key 'cloudflare.auth.global_key': missing: add global_key = { env = ",
        ),
    ],
)
def test_a_missing_key_says_what_to_add(text: str, expected: str) -> None:
    assert any(expected in p for p in _problems(text)), _problems(text)


def test_a_missing_file_says_how_to_name_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.toml")
    assert "--config" in str(info.value) and "$SYNCD_CONFIG" in str(info.value)


class _Inner(StrictModel):
    low: int = 0
    high: int = 0

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        if isinstance(data.get("low"), int) and isinstance(data.get("high"), int) and data["low"] > data["high"]:
            yield ("low",), "low must not exceed high"


class _Outer(StrictModel):
    inner: _Inner
    new_field: float = 1.0


def test_a_rule_runs_even_when_a_sibling_field_is_invalid() -> None:
    """The mechanism is generic: a new model's rules join every other error without special code."""
    with pytest.raises(ValidationError) as info:
        _Outer.model_validate({"inner": {"low": 2, "high": 1}, "new_field": "x"})
    found = {(e["loc"], e["msg"]) for e in info.value.errors()}
    assert found == {(("inner", "low"), "low must not exceed high"), (("new_field",), "Input should be a valid number")}


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("[vualt]\nx = 1", "key 'vualt': unknown key (did you mean 'vault'?)"),
        ("[logging]\nlevl = 'info'", "key 'logging.levl': unknown key (did you mean 'level'?)"),
        (
            "[server]\ntrigger_token = { evn = 'X' }",
            "key 'server.trigger_token.evn': unknown key (did you mean 'env'?)",
        ),
        ("[logging]\nzzzzz = 1", "key 'logging.zzzzz': unknown key"),
    ],
)
def test_an_unknown_key_suggests_the_known_key_it_resembles(snippet: str, expected: str) -> None:
    assert any(p == "syncd.toml: " + expected for p in _problems(BASE + "\n" + snippet + "\n")), _problems(
        BASE + "\n" + snippet + "\n"
    )


def test_an_unknown_key_inside_a_union_member_or_a_mapping_suggests_too() -> None:
    text = BASE.replace(
        'method = "token"\ntoken = { env = "VAULT_TOKEN" }',
        'method = "approle"\nrole_id = "r"\nsecret_id = { env = "S" }\nmout = "x"',
    )
    text += '\n[[mapping]]\nname = "m"\nvault = { mount = "s", path = "p", kv_versoin = 2 }\n'
    text += 'target = { script = "s" }\nsecret_text = { json_binding = "C" }\n'
    assert sorted(_problems(text)) == [
        "syncd.toml: key 'vault.auth.mout': unknown key (did you mean 'mount'?)",
        "syncd.toml: mapping 'm', key 'vault.kv_versoin': unknown key (did you mean 'kv_version'?)",
    ]
