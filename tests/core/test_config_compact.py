"""The compact form of ``[[mapping]]`` tables: the same values as the validated tables, less memory."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest

from syncd.config import MappingSettings, parse_config
from syncd.config.mappings import MappingTable

ACCOUNT = "a" * 32
HEAD = f"""
[vault]
address = "http://127.0.0.1:8200"
[cloudflare]
account_id = "{ACCOUNT}"
"""

TABLES: list[dict[str, Any]] = [
    {
        "name": "plain",
        "vault": {"mount": "secret", "path": "app/db"},
        "target": {"script": "edge"},
        "secret_text": {"keys": {"password": "DB_PASSWORD", "user": "DB_USER"}},
    },
    {
        "name": "unicode.and-quotes",
        "vault": {"mount": "/kv/", "path": 'team/ünïcode "quoted" \\ back', "kv_version": 1},
        "target": {"script": "edge_2", "account_id": "b" * 32, "dispatch_namespace": "tenants"},
        "secret_text": {"all_keys": True, "prefix": "APP_", "uppercase": True},
        "on_undeployed": "stage",
    },
    {
        "name": "keys",
        "vault": {"mount": "secret", "path": "signing", "kv_version": 2},
        "target": {"script": "signer"},
        "secret_text": {"json_binding": "ALL_JSON"},
        "secret_key": [
            {
                "vault_key": "hmac",
                "binding": "HMAC_KEY",
                "format": "raw",
                "algorithm": {"name": "HMAC", "hash": {"name": "SHA-256"}, "length": 256},
                "usages": ["sign", "verify"],
                "encoding": "hex",
            },
            {
                "vault_key": "jwk",
                "binding": "JWK_KEY",
                "format": "jwk",
                "algorithm": {"name": "ECDSA", "namedCurve": "P-256", "ratio": 0.5},
                "usages": ["verify"],
            },
        ],
    },
]


@pytest.mark.parametrize("raw", TABLES, ids=[t["name"] for t in TABLES])
def test_the_compact_form_holds_what_the_table_validated(raw: dict[str, Any]) -> None:
    table = MappingTable.model_validate(raw)
    compact = MappingSettings.from_table(raw)
    # canonical_json feeds mapping_fingerprint: byte for byte the table's JSON, so digests recorded
    # before the compact form existed still match and nothing is re-read after an upgrade.
    # What issue 17 added (sources, templates, a key's source or template) appears only when used;
    # the store-only target keys (secrets_store, scopes, adopt) came later too: a script target's
    # JSON is what it was before them.
    added: Any = {
        "sources": True,
        "templates": True,
        "secret_key": {"__all__": {"source", "template"}},
        "target": {"secrets_store", "scopes", "adopt"},
    }
    assert compact.canonical_json() == table.model_dump_json(exclude={"on_undeployed": True, **added})
    assert compact.as_table() == table.model_dump(exclude=added)
    assert table.vault is not None
    assert compact.vault.ref.mount == table.vault.mount
    assert compact.vault.ref.path == table.vault.path


def test_settings_keep_the_compact_form_and_share_equal_targets() -> None:
    text = HEAD + "".join(
        f"""
[[mapping]]
name = "m{i}"
vault = {{ mount = "secret", path = "p{i}" }}
target = {{ script = "{"one" if i < 3 else "two"}" }}
secret_text = {{ keys = {{ v = "V{i}" }} }}
"""
        for i in range(5)
    )
    settings = parse_config(text)
    mappings = settings.mappings
    assert all(isinstance(m, MappingSettings) for m in mappings)
    assert mappings[0].target is mappings[2].target
    assert mappings[0].target is not mappings[3].target
    targets = [settings.target_of(m) for m in mappings]
    assert targets[0] is targets[1] is settings.target_of(mappings[2])
    assert str(targets[3]) == f"{ACCOUNT}/two"
    assert mappings[1].vault.ref is mappings[1].vault.ref  # made once, not per access
    assert mappings[0].vault.mount is mappings[4].vault.mount  # one string per distinct mount
    keys = [next(iter(m.secret_text.keys)) for m in mappings if m.secret_text and m.secret_text.keys]
    assert len(keys) == 5 and all(k is keys[0] for k in keys)  # and per distinct Vault key name
    assert settings.model_dump()["mapping"][4]["vault"]["path"] == "p4"
    moved = settings.model_copy(update={"cloudflare": settings.cloudflare.model_copy(update={"account_id": "c" * 32})})
    assert str(moved.target_of(mappings[3])) == f"{'c' * 32}/two"  # not the first settings' cached target
    assert str(settings.target_of(mappings[3])) == f"{ACCOUNT}/two"


def test_every_table_s_problems_are_reported_in_one_pass() -> None:
    text = HEAD + "".join(
        f"""
[[mapping]]
name = "m{i}"
vault = {{ mount = "secret"{"" if i in (0, 2) else f', path = "p{i}"'} }}
target = {{ script = "s" }}
secret_text = {{ keys = {{ v = "V{i}" }} }}
"""
        for i in range(3)
    )
    with pytest.raises(Exception) as info:
        parse_config(text, "syncd.toml")
    message = str(info.value)
    assert "mapping 'm0', key 'vault.path'" in message
    assert "mapping 'm2', key 'vault.path'" in message
    assert "'m1'" not in message


def _bench_config(count: int) -> str:
    return HEAD + "".join(
        f"""
[[mapping]]
name = "bench-{i:05d}"
vault = {{ mount = "secret", path = "bench/p{i:05d}", kv_version = 2 }}
target = {{ script = "bench-{i // 100:03d}" }}
secret_text = {{ keys = {{ value = "S{i:05d}" }} }}
"""
        for i in range(count)
    )


def test_settings_of_many_mappings_stay_small() -> None:
    """Retained and peak memory per mapping while loading (the validated models held ~2.2 KiB each
    and all existed at once; a regression to either shows here)."""
    count = 2000
    text = _bench_config(count)
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        settings = parse_config(text)
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(settings.mappings) == count
    retained = (after - before) / count
    assert retained < 1000, f"{retained:.0f} bytes retained per mapping"
    # The raw TOML tables (~1.6 KiB per mapping here) are alive throughout; the models are not.
    assert (peak - before) / count < 3000, f"{(peak - before) / count:.0f} bytes per mapping at the peak"


def test_a_script_targets_digest_input_is_pinned_byte_for_byte() -> None:
    """What the digests of every existing configuration are made of (an upgrade re-reads nothing)."""
    compact = MappingSettings.from_table(TABLES[0])
    assert compact.canonical_json() == (
        '{"name":"plain","vault":{"mount":"secret","path":"app/db","kv_version":"auto"},'
        '"target":{"script":"edge","account_id":null,"dispatch_namespace":null},'
        '"secret_text":{"keys":{"password":"DB_PASSWORD","user":"DB_USER"},"all_keys":false,"prefix":"",'
        '"uppercase":false,"json_binding":null},"secret_key":[]}'
    )


def test_a_store_target_keeps_its_store_scopes_and_adopt() -> None:
    raw = {
        "name": "shared",
        "vault": {"mount": "secret", "path": "db"},
        "target": {"secrets_store": "default_secrets_store", "adopt": True},
        "secret_text": {"keys": {"password": "db-password"}},
    }
    compact = MappingSettings.from_table(raw)
    assert compact.target.is_store
    assert (compact.target.script, compact.target.scopes, compact.target.adopt) == (
        "default_secrets_store",
        ("workers",),
        True,
    )
    assert '"target":{"secrets_store":"default_secrets_store","account_id":null,"scopes":["workers"],"adopt":true}' in (
        compact.canonical_json()
    )
