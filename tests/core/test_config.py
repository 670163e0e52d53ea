"""The configuration loader: valid files load, every problem is named by file, mapping and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import (
    AppRoleAuth,
    CloudflareGlobalKey,
    KubernetesAuth,
    Settings,
    load_config,
    mapping_fingerprint,
    parse_config,
)
from syncd.errors import ConfigError
from syncd.model import DestinationKind, Target

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
ACCOUNT = "0123456789abcdef0123456789abcdef"

BASE = f"""
[vault]
address = "http://127.0.0.1:8200"
[vault.auth]
method = "token"
token = {{ env = "VAULT_TOKEN" }}
[cloudflare]
account_id = "{ACCOUNT}"
[cloudflare.auth]
api_token = {{ env = "CF_TOKEN" }}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "syncd.toml")
    assert info.value.exit_code == 2
    return [str(p) for p in info.value.problems]


def test_example_config_loads_with_every_mapping_kind() -> None:
    settings = load_config(EXAMPLE)
    assert isinstance(settings.vault.auth, KubernetesAuth)
    names = [m.name for m in settings.mappings]
    assert names == [
        "payments-api",
        "payments-api-tenant",
        "search-all-keys",
        "feature-config",
        "signing-keys",
        "shared-db",
        "orders-db",
    ]
    assert settings.target_of(settings.mappings[5]) == Target(
        ACCOUNT, "default_secrets_store", kind=DestinationKind.SECRETS_STORE
    )
    tenant = settings.target_of(settings.mappings[1])
    assert tenant.dispatch_namespace == "customers"
    assert tenant.account_id == "fedcba9876543210fedcba9876543210"
    assert settings.target_of(settings.mappings[0]).account_id == ACCOUNT
    keys = settings.mappings[4].secret_key
    assert [k.value_encoding for k in keys] == ["base64", "pem", "json"]
    composed = settings.mappings[6]
    assert [(s.name, s.kind) for s in composed.sources] == [("db", "database"), ("cfg", "kv")]
    assert [t.binding for t in composed.templates] == ["DATABASE_URL", "DB_PASSWORD", "CLIENTS_JSON"]


def test_defaults_are_safe() -> None:
    settings = parse_config(BASE)
    assert settings.vault.tls.verify is True
    assert settings.sync.on_delete == "keep"
    assert settings.sync.prune is False
    assert settings.sync.initial_sync == "push"
    assert settings.cloudflare.write_mode == "bulk"
    assert settings.server.trigger_token is None
    assert settings.cloudflare.rate_limit_requests == 1200


def test_unknown_keys_are_errors_naming_the_key() -> None:
    problems = _problems(BASE + "\n[sync]\nintervall_seconds = 5\n")
    assert problems == ["syncd.toml: key 'sync.intervall_seconds': unknown key (did you mean 'interval_seconds'?)"]


def test_all_problems_reported_at_once_with_mapping_names() -> None:
    text = (
        BASE
        + """
[[mapping]]
name = "alpha"
vault = { mount = "secret", path = "a" }
target = { script = "Bad Name" }
secret_text = { keys = { k = "1NOT_IDENT" } }

[[mapping]]
name = "beta"
vault = { mount = "secret", path = "b" }
target = { script = "ok" }
"""
    )
    problems = _problems(text)
    assert len(problems) == 3
    assert any("mapping 'alpha'" in p and "'target.script'" in p for p in problems)
    assert any("mapping 'alpha'" in p and "secret_text.keys" in p and "JavaScript identifier" in p for p in problems)
    assert any("mapping 'beta'" in p and "needs [mapping.secret_text]" in p for p in problems)


def test_mapping_without_name_is_named_by_index() -> None:
    text = BASE + '\n[[mapping]]\nvault = { mount = "secret", path = "a" }\ntarget = { script = "s" }\n'
    problems = _problems(text + 'secret_text = { json_binding = "CONF" }\n')
    assert problems == [
        "syncd.toml: mapping 'mapping[0]', key 'name': missing: add name = \"payments-api\" (unique in the file)"
    ]


def test_duplicate_target_bindings_across_mappings_are_errors() -> None:
    text = BASE
    for name in ("one", "two"):
        text += f"""
[[mapping]]
name = "{name}"
vault = {{ mount = "secret", path = "{name}" }}
target = {{ script = "shared" }}
secret_text = {{ keys = {{ k = "SAME_NAME" }} }}
"""
    problems = _problems(text)
    assert len(problems) == 1
    assert "mapping 'two'" in problems[0] and "'SAME_NAME'" in problems[0] and "'one'" in problems[0]


def test_same_binding_name_on_different_scripts_is_fine() -> None:
    text = BASE
    for name in ("one", "two"):
        text += f"""
[[mapping]]
name = "{name}"
vault = {{ mount = "secret", path = "p" }}
target = {{ script = "{name}" }}
secret_text = {{ keys = {{ k = "SAME_NAME" }} }}
"""
    assert len(parse_config(text).mappings) == 2


def test_inline_credentials_refused_unless_allowed() -> None:
    inline = BASE.replace('api_token = { env = "CF_TOKEN" }', 'api_token = { value = "tok-canary-123" }')
    problems = _problems(inline)
    assert len(problems) == 1 and "cloudflare.auth.api_token" in problems[0]
    assert "tok-canary-123" not in problems[0]
    allowed = inline.replace("[cloudflare]\n", "[cloudflare]\nallow_inline_credentials = true\n")
    settings = parse_config(allowed)
    assert "tok-canary-123" not in repr(settings)


def test_credential_ref_needs_exactly_one_source() -> None:
    problems = _problems(BASE.replace('{ env = "CF_TOKEN" }', '{ env = "A", file = "/b" }'))
    assert len(problems) == 1 and "exactly one of env, file, value" in problems[0]


def test_auth_union_errors_name_the_users_key() -> None:
    text = BASE.replace('method = "token"\ntoken = { env = "VAULT_TOKEN" }', 'method = "approle"\nrole_id = "r"')
    assert _problems(text) == [
        "syncd.toml: key 'vault.auth.secret_id': missing: add secret_id = "
        '{ file = "/var/run/secrets/vault/secret-id" } (or { env = "VAULT_SECRET_ID" }) to [vault.auth]'
    ]


def test_approle_and_global_key_auth_parse() -> None:
    text = BASE.replace(
        'method = "token"\ntoken = { env = "VAULT_TOKEN" }',
        'method = "approle"\nrole_id = "r"\nsecret_id = { file = "/run/secret-id" }',
    ).replace('api_token = { env = "CF_TOKEN" }', 'email = "ops@example.com"\nglobal_key = { env = "CF_KEY" }')
    settings = parse_config(text)
    assert isinstance(settings.vault.auth, AppRoleAuth)
    assert isinstance(settings.cloudflare.auth, CloudflareGlobalKey)


def test_account_id_required_somewhere() -> None:
    text = BASE.replace(f'account_id = "{ACCOUNT}"', "") + (
        '\n[[mapping]]\nname = "m"\nvault = { mount = "secret", path = "a" }\n'
        'target = { script = "s" }\nsecret_text = { json_binding = "C" }\n'
    )
    assert _problems(text) == [
        "syncd.toml: mapping 'm', key 'target.account_id': no account id here and no cloudflare.account_id "
        'default: add account_id = "<32 hex characters>" to [cloudflare] (or to this target)'
    ]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('format = "raw"\nencoding = "pem"', "does not fit format 'raw'"),
        ('format = "pkcs8"\nencoding = "json"', "does not fit format 'pkcs8'"),
        ('format = "jwk"\nencoding = "base64"', "does not fit format 'jwk'"),
    ],
)
def test_secret_key_encoding_must_fit_format(snippet: str, expected: str) -> None:
    text = BASE + (
        '\n[[mapping]]\nname = "k"\nvault = { mount = "secret", path = "a" }\ntarget = { script = "s" }\n'
        f'[[mapping.secret_key]]\nvault_key = "x"\nbinding = "KEY"\nalgorithm = {{ name = "HMAC", hash = "SHA-256" }}\n'
        f'usages = ["sign"]\n{snippet}\n'
    )
    problems = _problems(text)
    assert len(problems) == 1 and expected in problems[0] and "mapping 'k'" in problems[0]


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[vault\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.toml")
    assert "cannot read" in str(info.value)


def test_settings_are_immutable() -> None:
    settings = parse_config(BASE)
    with pytest.raises(ValueError, match="frozen"):
        settings.sync.prune = True  # type: ignore[misc]


def test_mapping_fingerprint_changes_with_bindings_not_with_other_mappings() -> None:
    def one(binding: str) -> Settings:
        return parse_config(
            BASE + '\n[[mapping]]\nname = "m"\nvault = { mount = "secret", path = "a" }\n'
            f'target = {{ script = "s" }}\nsecret_text = {{ keys = {{ k = "{binding}" }} }}\n'
        )

    a, b = one("FIRST"), one("SECOND")
    fa = mapping_fingerprint(a.mappings[0], a.target_of(a.mappings[0]))
    fb = mapping_fingerprint(b.mappings[0], b.target_of(b.mappings[0]))
    assert fa != fb
    assert fa == mapping_fingerprint(one("FIRST").mappings[0], a.target_of(a.mappings[0]))
