"""``[mapping.sources.NAME]`` and ``[mapping.templates]``: the syntax, and every problem named with
file, mapping, key (the binding) and the position in the template."""

from __future__ import annotations

import pytest

from syncd.config import mapping_fingerprint, parse_config
from syncd.errors import ConfigError
from syncd.model import Target, VaultSecretRef

HEAD = """
[vault]
address = "http://127.0.0.1:8200"
[cloudflare]
account_id = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
"""

COMPOSED = """
[[mapping]]
name = "app-db"
target = { script = "app" }
vault = { mount = "secret", path = "app/flags" }

[mapping.sources.db]
kind = "database"
role = "app"

[mapping.sources.cfg]
mount = "secret"
path = "app/config"
kv_version = 2

[mapping.templates]
DATABASE_URL = "postgres://{{ db.username }}:{{ db.password | urlencode }}@{{ cfg.host }}/app"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(HEAD + text, "syncd.toml")
    return [str(p) for p in info.value.problems]


def test_named_sources_and_templates() -> None:
    [mapping] = parse_config(HEAD + COMPOSED).mappings
    assert [(s.name, s.kind, s.ref) for s in mapping.sources] == [
        ("vault", "kv", VaultSecretRef("secret", "app/flags")),
        ("db", "database", VaultSecretRef("database", "static-creds/app")),
        ("cfg", "kv", VaultSecretRef("secret", "app/config")),
    ]
    [template] = mapping.templates
    assert template.binding == "DATABASE_URL" and template.template.names == {"db", "cfg"}
    assert mapping.static_binding_names() == ["DATABASE_URL"]


def test_a_mapping_without_a_vault_table_has_its_first_source_as_primary() -> None:
    [mapping] = parse_config(HEAD + COMPOSED.replace('vault = { mount = "secret", path = "app/flags" }\n', "")).mappings
    assert [s.name for s in mapping.sources] == ["db", "cfg"]
    assert mapping.vault.name == "db"


def test_a_template_change_changes_the_mapping_digest_and_a_plain_mapping_keeps_its_own() -> None:
    target = Target("a" * 32, "app")
    [first] = parse_config(HEAD + COMPOSED).mappings
    [second] = parse_config(HEAD + COMPOSED.replace("/app", "/app2")).mappings
    assert mapping_fingerprint(first, target) != mapping_fingerprint(second, target)
    plain = parse_config(
        HEAD + '[[mapping]]\nname = "p"\nvault = { mount = "s", path = "p" }\ntarget = { script = "app" }\n'
        'secret_text = { keys = { k = "K" } }\n'
    ).mappings[0]
    # The digest of a one-source mapping as the releases before issue 17 computed it.
    assert plain.canonical_json() == (
        '{"name":"p","vault":{"mount":"s","path":"p","kv_version":"auto"},"target":{"script":"app",'
        '"account_id":null,"dispatch_namespace":null},"secret_text":{"keys":{"k":"K"},"all_keys":false,'
        '"prefix":"","uppercase":false,"json_binding":null},"secret_key":[]}'
    )


def test_template_problems_name_file_mapping_binding_and_position() -> None:
    found = problems(
        COMPOSED.replace(
            "DATABASE_URL = ",
            'BAD_FILTER = "{{ db.password | rot13 }}"\n'
            'UNDECLARED = "x{{ dbx.password }}"\n'
            "BROKEN = \"a\\n{{ db.password }\"\n"
            'SANDBOX = "{{ cfg.__class__ }}"\n'
            "DATABASE_URL = ",
        )
    )
    assert found == [
        "syncd.toml: mapping 'app-db', key 'templates.BAD_FILTER': unknown filter 'rot13' (filters: b64encode, "
        "b64decode, urlencode, tojson, trim, lower, upper, default) (at line 1, column 18)",
        "syncd.toml: mapping 'app-db', key 'templates.BROKEN': does not parse: unexpected '}' (at line 2)",
        "syncd.toml: mapping 'app-db', key 'templates.SANDBOX': attribute '__class__' is not allowed "
        "(at line 1, column 8)",
        "syncd.toml: mapping 'app-db', key 'templates.UNDECLARED': refers to 'dbx', which is not a source of "
        "this mapping (sources: cfg, db, vault) (at line 1, column 5)",
    ]


def test_source_problems() -> None:
    found = problems(
        """
[[mapping]]
name = "m"
target = { script = "app" }
secret_text = { keys = { k = "K" } }
templates = { OK = "{{ db.password }}" }
[mapping.sources.db]
kind = "database"
path = "app"
[mapping.sources.for]
mount = "secret"
[mapping.sources.cfg]
kind = "kv"
path = "x"
role = "r"
[[mapping.secret_key]]
binding = "K2"
source = "nope"
vault_key = "k"
format = "raw"
algorithm = { name = "HMAC" }
usages = ["sign"]
[[mapping.secret_key]]
binding = "K3"
format = "raw"
algorithm = { name = "HMAC" }
usages = ["sign"]
"""
    )
    prefix = "syncd.toml: mapping 'm', key "
    assert sorted(p.removeprefix(prefix) for p in found) == sorted(
        [
            "'sources.db.role': missing: add role = \"app\" (the static role, read at {mount}/static-creds/{role})",
            "'sources.db.path': path is for a KV source; a kind = \"database\" source has mount and role",
            "'sources.for.path': missing: add path = \"payments/api\" to this source",
            "'sources.for': 'for' cannot name a source: letters, digits and _ (at most 63), starting with a "
            "letter, not a template keyword, e.g. db or cfg",
            "'sources.cfg.mount': missing: add mount = \"secret\" to this source",
            "'sources.cfg.role': role is for kind = \"database\" sources (a KV source has mount and path)",
            "'secret_key.1': give exactly one of vault_key (e.g. vault_key = \"signing_key\") or template",
            "'secret_text': secret_text reads the vault source: add vault = { ... }, or write the bindings as "
            "[mapping.templates]",
            "'secret_key.0.source': 'nope' is not a source of this mapping (sources: cfg, db, for)",
        ]
    )


def test_a_templated_binding_written_by_two_mappings_is_a_config_error() -> None:
    other = """
[[mapping]]
name = "other"
vault = { mount = "secret", path = "x" }
target = { script = "app" }
secret_text = { keys = { url = "DATABASE_URL" } }
"""
    assert problems(COMPOSED + other) == [
        "syncd.toml: mapping 'other', key 'secret_text.keys.url': binding 'DATABASE_URL' on "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/app is also written by mapping 'app-db'"
    ]


def test_a_mapping_needs_a_source() -> None:
    assert problems('[[mapping]]\nname = "m"\ntarget = { script = "app" }\ntemplates = { A = "{{ x.y }}" }\n') == [
        "syncd.toml: mapping 'm', key 'vault': missing: add vault = { mount = \"secret\", path = \"payments/api\" } "
        "(or [mapping.sources.NAME])",
        "syncd.toml: mapping 'm', key 'templates.A': refers to 'x', which is not a source of this mapping "
        "(sources: none) (at line 1, column 4)",
    ]
