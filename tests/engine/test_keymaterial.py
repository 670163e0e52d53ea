"""Key material: every encoding decoded to what Cloudflare takes, and every mistake refused cleanly."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from syncd.config import SecretKeyBinding
from syncd.engine.keymaterial import (
    KeyMaterialError,
    check_der_sequence,
    encode_key_material,
    pem_to_der,
)
from syncd.errors import ValueRejected
from tests.engine.conftest import error_text, leaks, read_bytes, read_data

HMAC_KEY = bytes(range(32))
AES_KEY = bytes(range(100, 132))


def binding(fmt: str, encoding: str | None = None, algorithm: dict[str, Any] | None = None) -> SecretKeyBinding:
    return SecretKeyBinding.from_table(
        {
            "vault_key": "key",
            "binding": "SIGNING_KEY",
            "format": fmt,
            "algorithm": algorithm or {"name": "HMAC", "hash": "SHA-256"},
            "usages": ["sign", "verify"],
            "encoding": encoding,
        }
    )


def rejected(spec: SecretKeyBinding, raw: Any) -> ValueRejected:
    with pytest.raises(ValueRejected) as info:
        encode_key_material(spec, raw)
    assert info.value.binding == spec.binding
    return info.value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- raw ---------------------------------------------------------------------------------------------


def test_raw_base64_is_re_emitted_as_standard_base64() -> None:
    assert encode_key_material(binding("raw"), b64(HMAC_KEY)) == {"key_base64": b64(HMAC_KEY)}


@pytest.mark.parametrize(
    "text",
    [
        base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # URL-safe alphabet
        base64.b64encode(b"\xfb\xff" * 16).decode().rstrip("="),  # missing padding
        "  "
        + base64.b64encode(b"\xfb\xff" * 16).decode()[:20]
        + "\n"
        + base64.b64encode(b"\xfb\xff" * 16).decode()[20:],
    ],
    ids=["urlsafe", "unpadded", "wrapped"],
)
def test_raw_base64_accepts_urlsafe_unpadded_and_wrapped_text(text: str) -> None:
    assert encode_key_material(binding("raw"), text) == {"key_base64": b64(b"\xfb\xff" * 16)}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("abc$def", "outside the base64 alphabet"),
        ("ab+c-def", "mixes the standard and URL-safe"),
        ("abcde", "bad length or padding"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "encoding = 'pem'"),
    ],
)
def test_raw_base64_refuses_malformed_text(text: str, why: str) -> None:
    assert why in rejected(binding("raw"), text).why


def test_raw_hex_becomes_base64_ignoring_case_whitespace_and_colons() -> None:
    text = ":".join(f"{b:02X}" for b in HMAC_KEY[:16]) + "\n" + HMAC_KEY[16:].hex()
    assert encode_key_material(binding("raw", "hex"), text) == {"key_base64": b64(HMAC_KEY)}


def test_raw_hex_refuses_odd_or_non_hex_text() -> None:
    assert "not hex" in rejected(binding("raw", "hex"), "abc").why
    assert "not hex" in rejected(binding("raw", "hex"), "zz").why


def test_raw_key_must_not_be_empty() -> None:
    assert "empty" in rejected(binding("raw"), "").why


@pytest.mark.parametrize("size", [16, 24, 32])
def test_raw_aes_keys_of_valid_sizes_pass(size: int) -> None:
    spec = binding("raw", algorithm={"name": "AES-GCM"})
    assert encode_key_material(spec, b64(AES_KEY[:size])) == {"key_base64": b64(AES_KEY[:size])}


def test_raw_aes_key_of_wrong_size_is_refused_with_its_length() -> None:
    exc = rejected(binding("raw", algorithm={"name": "AES-GCM"}), b64(AES_KEY[:20]))
    assert "16, 24 or 32 bytes, this one is 20" in exc.why


def test_raw_aes_key_must_match_algorithm_length() -> None:
    exc = rejected(binding("raw", algorithm={"name": "AES-CBC", "length": 256}), b64(AES_KEY[:16]))
    assert "algorithm.length is 256 bits but the key is 128" in exc.why


def test_raw_hmac_key_of_any_length_passes() -> None:
    assert encode_key_material(binding("raw"), b64(b"k" * 7)) == {"key_base64": b64(b"k" * 7)}


def test_non_text_vault_value_is_refused_for_byte_encodings() -> None:
    assert "holds a JSON number, expected text" in rejected(binding("raw"), 1234).why


# --- pkcs8 / spki ------------------------------------------------------------------------------------


def test_pkcs8_pem_becomes_base64_of_its_der() -> None:
    body = encode_key_material(
        binding("pkcs8", algorithm={"name": "ECDSA", "namedCurve": "P-256"}), read_data("ec_p256_pkcs8.pem")
    )
    assert body == {"key_base64": b64(read_bytes("ec_p256_pkcs8.der"))}


def test_spki_pem_becomes_base64_of_its_der() -> None:
    body = encode_key_material(
        binding("spki", algorithm={"name": "ECDSA", "namedCurve": "P-256"}), read_data("ec_p256_spki.pem")
    )
    assert body == {"key_base64": b64(read_bytes("ec_p256_spki.der"))}


def test_pkcs8_as_base64_or_hex_der_is_checked_and_passed_on() -> None:
    der = read_bytes("ec_p256_pkcs8.der")
    assert encode_key_material(binding("pkcs8", "base64"), b64(der)) == {"key_base64": b64(der)}
    assert encode_key_material(binding("pkcs8", "hex"), der.hex()) == {"key_base64": b64(der)}


@pytest.mark.parametrize(
    ("fmt", "file", "hint"),
    [
        ("pkcs8", "rsa1024_pkcs1.pem", "openssl pkcs8 -topk8 -nocrypt"),
        ("pkcs8", "ec_p256_sec1.pem", "openssl pkcs8 -topk8 -nocrypt"),
        ("pkcs8", "ec_p256_encrypted.pem", "unencrypted"),
        ("pkcs8", "ec_p256_spki.pem", "use format 'spki'"),
        ("spki", "rsa1024_pkcs1_public.pem", "openssl rsa -RSAPublicKey_in -pubout"),
        ("spki", "ec_p256_pkcs8.pem", "use format 'pkcs8'"),
    ],
)
def test_pem_with_a_label_that_does_not_fit_the_format_is_refused_with_a_hint(fmt: str, file: str, hint: str) -> None:
    pem = read_data(file)
    exc = rejected(binding(fmt), pem)
    assert hint in exc.why
    label = pem.splitlines()[0].removeprefix("-----BEGIN ").removesuffix("-----")
    assert f"PEM label is {label!r}" in exc.why


def test_pem_refusals_carry_no_key_material() -> None:
    pem = read_data("rsa1024_pkcs1.pem")
    body_lines = pem.strip().splitlines()[1:-1]
    exc = rejected(binding("pkcs8"), pem)
    assert leaks(error_text(exc), tuple(body_lines)) == []


def test_pem_without_a_block_or_with_two_blocks_is_refused() -> None:
    assert "no PEM block" in rejected(binding("pkcs8"), "just text").why
    two = read_data("ec_p256_pkcs8.pem") + read_data("ec_p256_pkcs8.pem")
    assert "2 PEM blocks" in rejected(binding("pkcs8"), two).why


def test_pem_to_der_checks_matching_end_label() -> None:
    der = read_bytes("ec_p256_spki.der")
    text = f"-----BEGIN PUBLIC KEY-----\n{b64(der)}\n-----END PRIVATE KEY-----\n"
    with pytest.raises(KeyMaterialError, match="ends with 'PRIVATE KEY'"):
        pem_to_der(text, "PUBLIC KEY")


def test_pem_to_der_ignores_text_around_the_block() -> None:
    text = "Bag Attributes: none\n" + read_data("ec_p256_spki.pem") + "trailing note\n"
    assert pem_to_der(text, "PUBLIC KEY") == read_bytes("ec_p256_spki.der")


@pytest.mark.parametrize(
    ("fmt", "file", "label", "why"),
    [
        ("pkcs8", "ec_p256_sec1.pem", "EC PRIVATE KEY", "not a PKCS#8 private key"),
        ("pkcs8", "rsa1024_pkcs1.pem", "RSA PRIVATE KEY", "not a PKCS#8 private key"),
        ("spki", "rsa1024_pkcs1_public.pem", "RSA PUBLIC KEY", "not a SubjectPublicKeyInfo"),
    ],
)
def test_base64_der_of_the_wrong_key_structure_is_refused(fmt: str, file: str, label: str, why: str) -> None:
    der = pem_to_der(read_data(file), label)
    assert why in rejected(binding(fmt, "base64"), b64(der)).why


def test_truncated_der_is_refused() -> None:
    der = read_bytes("ec_p256_pkcs8.der")
    exc = rejected(binding("pkcs8", "base64"), b64(der[:-5]))
    assert "not DER" in exc.why


def test_der_not_starting_with_a_sequence_is_refused() -> None:
    assert "0x30" in rejected(binding("spki", "hex"), "0401ff").why


@pytest.mark.parametrize(
    ("der", "ok"),
    [
        (bytes([0x30, 0x03, 1, 2, 3]), True),
        (bytes([0x30, 0x81, 0x03, 1, 2, 3]), True),
        (bytes([0x30, 0x82, 0x00, 0x03, 1, 2, 3]), True),
        (bytes([0x30, 0x04, 1, 2, 3]), False),
        (bytes([0x30, 0x80]), False),
        (bytes([0x30]), False),
        (bytes([0x30, 0x02, 1, 2, 3]), False),
    ],
)
def test_check_der_sequence_accepts_exactly_one_complete_sequence(der: bytes, ok: bool) -> None:
    if ok:
        check_der_sequence(der)
    else:
        with pytest.raises(KeyMaterialError):
            check_der_sequence(der)


# --- jwk ---------------------------------------------------------------------------------------------

JWK = {"kty": "oct", "k": base64.urlsafe_b64encode(HMAC_KEY).decode().rstrip("="), "alg": "HS256"}


def test_jwk_from_a_json_object_in_vault() -> None:
    assert encode_key_material(binding("jwk"), dict(JWK)) == {"key_jwk": JWK}


def test_jwk_from_json_text_in_vault() -> None:
    assert encode_key_material(binding("jwk"), json.dumps(JWK)) == {"key_jwk": JWK}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ({"k": "abc"}, "needs a 'kty'"),
        ('{"kty": "oct"}', "needs a non-empty 'k'"),
        ("[1, 2]", "a JWK is a JSON object, this is a JSON array"),
        ("not json", "not JSON text"),
        (42, "this is a JSON number"),
    ],
)
def test_jwk_that_is_not_a_key_object_is_refused(raw: Any, why: str) -> None:
    assert why in rejected(binding("jwk"), raw).why


def test_refusal_names_vault_key_format_and_encoding() -> None:
    exc = rejected(binding("raw", "hex"), "zz")
    assert str(exc).startswith("binding 'SIGNING_KEY': Vault key 'key' (raw, hex): ")
