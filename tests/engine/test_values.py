"""desired_bindings: every secret_text mode, secret_key bodies, and every problem reported without values."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from syncd.engine.values import MAX_TEXT_BYTES, DesiredBinding, ValuesRejected, desired_bindings
from syncd.errors import ValueRejected
from syncd.model import BindingKind, DestinationKind, Target
from syncd.model_store import MAX_STORE_VALUE_BYTES
from tests.engine.conftest import CANARY, CANARY_2, TARGET, error_text, leaks, mapping, read_bytes, read_data, secret

HMAC_KEY = bytes(range(32))
HMAC_BINDING = {
    "vault_key": "signing_key",
    "binding": "SIGNING_KEY",
    "format": "raw",
    "algorithm": {"name": "HMAC", "hash": "SHA-256"},
    "usages": ["sign", "verify"],
}


def bodies(bindings: list[DesiredBinding]) -> dict[str, dict[str, Any]]:
    return {b.name: b.body.reveal() for b in bindings}


def rejected(m: Any, data: dict[str, Any], version: int | None = 7) -> ValuesRejected:
    with pytest.raises(ValuesRejected) as info:
        desired_bindings(m, TARGET, secret(data, version))
    assert leaks(error_text(info.value)) == []
    return info.value


# --- secret_text modes -------------------------------------------------------------------------------


def test_keys_mode_maps_each_vault_key_to_its_binding() -> None:
    m = mapping(secret_text={"keys": {"api_key": "API_KEY", "db_password": "DB_PASSWORD"}})
    result = desired_bindings(m, TARGET, secret({"api_key": CANARY, "db_password": CANARY_2, "unmapped": "x"}))
    assert bodies(result) == {
        "API_KEY": {"name": "API_KEY", "type": "secret_text", "text": CANARY},
        "DB_PASSWORD": {"name": "DB_PASSWORD", "type": "secret_text", "text": CANARY_2},
    }
    assert [(b.mapping, b.target, b.kind) for b in result] == [("edge", TARGET, BindingKind.SECRET_TEXT)] * 2


def test_keys_mode_json_encodes_non_string_values() -> None:
    m = mapping(secret_text={"keys": {"port": "PORT", "flags": "FLAGS", "nothing": "NOTHING"}})
    result = desired_bindings(m, TARGET, secret({"port": 5432, "flags": {"b": True, "a": [1]}, "nothing": None}))
    texts = {name: body["text"] for name, body in bodies(result).items()}
    assert texts == {"PORT": "5432", "FLAGS": '{"a": [1], "b": true}', "NOTHING": "null"}


def test_missing_vault_key_names_the_key_path_and_version() -> None:
    m = mapping(secret_text={"keys": {"api_key": "API_KEY", "gone": "GONE"}})
    exc = rejected(m, {"api_key": CANARY})
    assert exc.binding == "GONE"
    assert exc.why == "Vault key 'gone' is missing from secret/apps/edge v7"
    assert isinstance(exc, ValueRejected)
    assert exc.reason == "ValueRejected"


def test_missing_vault_key_in_kv_v1_names_the_path_without_version() -> None:
    m = mapping(secret_text={"keys": {"gone": "GONE"}})
    assert rejected(m, {}, version=None).why == "Vault key 'gone' is missing from secret/apps/edge"


def test_all_keys_mode_binds_every_key_with_prefix_and_uppercase() -> None:
    m = mapping(secret_text={"all_keys": True, "prefix": "APP_", "uppercase": True})
    result = desired_bindings(m, TARGET, secret({"api_key": CANARY, "Token": CANARY_2}))
    assert {n: b["text"] for n, b in bodies(result).items()} == {"APP_API_KEY": CANARY, "APP_TOKEN": CANARY_2}


def test_all_keys_mode_keeps_key_case_without_uppercase() -> None:
    m = mapping(secret_text={"all_keys": True})
    assert [b.name for b in desired_bindings(m, TARGET, secret({"apiKey": "a", "b_2": "b"}))] == ["apiKey", "b_2"]


def test_all_keys_mode_rejects_keys_that_make_no_identifier_naming_each_key() -> None:
    m = mapping(secret_text={"all_keys": True})
    exc = rejected(m, {"ok": CANARY, "has-dash": CANARY, "1starts": CANARY_2, "class": CANARY})
    assert {(p.binding, p.why.split(" does")[0]) for p in exc.problems} == {
        ("has-dash", "Vault key 'has-dash'"),
        ("1starts", "Vault key '1starts'"),
        ("class", "Vault key 'class'"),
    }
    assert "3 bindings rejected" in str(exc)


def test_all_keys_mode_rejects_two_keys_that_become_the_same_name() -> None:
    m = mapping(secret_text={"all_keys": True, "uppercase": True})
    exc = rejected(m, {"token": CANARY, "TOKEN": CANARY_2})
    assert [(p.binding, p.why) for p in exc.problems] == [("TOKEN", "binding name is produced 2 times in this mapping")]


def test_all_keys_mode_leaves_out_keys_used_by_secret_key_bindings() -> None:
    m = mapping(secret_text={"all_keys": True}, secret_key=[HMAC_BINDING])
    result = desired_bindings(m, TARGET, secret({"api": CANARY, "signing_key": base64.b64encode(HMAC_KEY).decode()}))
    assert {b.name: b.kind for b in result} == {"api": BindingKind.SECRET_TEXT, "SIGNING_KEY": BindingKind.SECRET_KEY}


def test_json_binding_sends_the_whole_secret_as_compact_sorted_json() -> None:
    m = mapping(secret_text={"json_binding": "CONFIG"})
    result = desired_bindings(m, TARGET, secret({"b": CANARY, "a": 1}))
    assert bodies(result) == {"CONFIG": {"name": "CONFIG", "type": "secret_text", "text": f'{{"a":1,"b":"{CANARY}"}}'}}


# --- size limit --------------------------------------------------------------------------------------


def test_text_of_exactly_the_limit_passes() -> None:
    m = mapping(secret_text={"keys": {"big": "BIG"}})
    assert len(desired_bindings(m, TARGET, secret({"big": "x" * MAX_TEXT_BYTES}))) == 1


def test_text_over_5kb_is_rejected_with_its_size_in_utf8_bytes() -> None:
    m = mapping(secret_text={"keys": {"big": "BIG"}})
    value = CANARY + "é" * 2600  # under 5120 characters, over 5120 bytes
    exc = rejected(m, {"big": value})
    size = len(value.encode())
    assert exc.why == f"value is {size} bytes, over Cloudflare's 5 KB limit (5120 bytes)"


def test_a_store_secret_takes_what_a_worker_secret_cannot_up_to_the_store_s_limit() -> None:
    m = mapping(secret_text={"keys": {"pem": "CERT"}})
    store = Target(TARGET.account_id, "default_secrets_store", kind=DestinationKind.SECRETS_STORE)
    chain = "x" * (MAX_TEXT_BYTES + 1)  # a certificate chain: too big for a Worker secret
    assert "over Cloudflare's 5 KB limit" in rejected(m, {"pem": chain}).why
    (binding,) = desired_bindings(m, store, secret({"pem": chain}))
    assert binding.body.reveal()["text"] == chain
    with pytest.raises(ValuesRejected) as caught:
        desired_bindings(m, store, secret({"pem": "x" * (MAX_STORE_VALUE_BYTES + 1)}))
    limit = "over the Secrets Store's limit (65536 bytes)"
    assert caught.value.why == f"value is {MAX_STORE_VALUE_BYTES + 1} bytes, {limit}"


def test_json_binding_over_5kb_is_rejected() -> None:
    m = mapping(secret_text={"json_binding": "CONFIG"})
    assert "over Cloudflare's 5 KB limit" in rejected(m, {"a": CANARY * 300}).why


# --- secret_key --------------------------------------------------------------------------------------


def test_secret_key_raw_binding_has_metadata_and_key_base64() -> None:
    m = mapping(secret_key=[HMAC_BINDING])
    (binding,) = desired_bindings(m, TARGET, secret({"signing_key": base64.b64encode(HMAC_KEY).decode()}))
    assert binding.kind is BindingKind.SECRET_KEY
    assert binding.body.reveal() == {
        "name": "SIGNING_KEY",
        "type": "secret_key",
        "format": "raw",
        "algorithm": {"name": "HMAC", "hash": "SHA-256"},
        "usages": ["sign", "verify"],
        "key_base64": base64.b64encode(HMAC_KEY).decode(),
    }


def test_secret_key_pkcs8_pem_binding_carries_der_base64() -> None:
    spec = {
        **HMAC_BINDING,
        "format": "pkcs8",
        "algorithm": {"name": "ECDSA", "namedCurve": "P-256"},
        "usages": ["sign"],
    }
    m = mapping(secret_key=[spec])
    (binding,) = desired_bindings(m, TARGET, secret({"signing_key": read_data("ec_p256_pkcs8.pem")}))
    assert binding.body.reveal()["key_base64"] == base64.b64encode(read_bytes("ec_p256_pkcs8.der")).decode()


def test_secret_key_jwk_binding_carries_key_jwk() -> None:
    jwk = {"kty": "oct", "k": "c2VjcmV0LWtleS1ieXRlcw"}
    m = mapping(secret_key=[{**HMAC_BINDING, "format": "jwk"}])
    (binding,) = desired_bindings(m, TARGET, secret({"signing_key": json.dumps(jwk)}))
    assert binding.body.reveal()["key_jwk"] == jwk
    assert "key_base64" not in binding.body.reveal()


def test_secret_key_missing_vault_key_is_rejected() -> None:
    m = mapping(secret_key=[HMAC_BINDING])
    exc = rejected(m, {"other": CANARY})
    assert (exc.binding, exc.why) == ("SIGNING_KEY", "Vault key 'signing_key' is missing from secret/apps/edge v7")


# --- all problems at once, never a value ------------------------------------------------------------


def test_every_problem_of_a_mapping_is_reported_at_once_without_values() -> None:
    m = mapping(
        secret_text={"keys": {"big": "BIG", "gone": "GONE", "fine": "FINE"}},
        secret_key=[{**HMAC_BINDING, "algorithm": {"name": "AES-GCM"}, "usages": ["encrypt"]}],
    )
    exc = rejected(m, {"big": CANARY * 400, "fine": CANARY, "signing_key": base64.b64encode(CANARY.encode()).decode()})
    assert [p.binding for p in exc.problems] == ["BIG", "GONE", "SIGNING_KEY"]
    assert str(exc).startswith("mapping 'edge': 3 bindings rejected: binding 'BIG': value is")
    key_b64 = base64.b64encode(CANARY.encode()).decode()
    assert leaks(error_text(exc), (key_b64,)) == []


def test_desired_binding_repr_shows_no_value() -> None:
    m = mapping(secret_text={"keys": {"api_key": "API_KEY"}})
    (binding,) = desired_bindings(m, TARGET, secret({"api_key": CANARY}))
    assert leaks(repr(binding) + str(binding)) == []


# --- shape -------------------------------------------------------------------------------------------


def _key_binding(**changes: Any) -> DesiredBinding:
    m = mapping(secret_key=[{**HMAC_BINDING, **changes}])
    (binding,) = desired_bindings(m, TARGET, secret({"signing_key": base64.b64encode(HMAC_KEY).decode()}))
    return binding


def test_shape_ignores_the_value_and_the_name() -> None:
    m1 = mapping(secret_text={"keys": {"a": "A"}})
    m2 = mapping(secret_text={"keys": {"b": "B"}})
    (one,) = desired_bindings(m1, TARGET, secret({"a": CANARY}))
    (two,) = desired_bindings(m2, TARGET, secret({"b": CANARY_2}))
    assert one.shape() == two.shape()


def test_shape_changes_with_algorithm_and_usages_but_is_stable_otherwise() -> None:
    base = _key_binding().shape()
    assert _key_binding(algorithm={"name": "HMAC", "hash": "SHA-512"}).shape() != base
    assert _key_binding(usages=["sign"]).shape() != base
    assert _key_binding().shape() == base


def test_shape_differs_between_text_and_key_bindings() -> None:
    (text,) = desired_bindings(mapping(secret_text={"keys": {"a": "A"}}), TARGET, secret({"a": "x"}))
    assert text.shape() != _key_binding().shape()
