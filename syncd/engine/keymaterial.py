"""Key material for ``secret_key`` bindings: decode what Vault holds, re-encode what Cloudflare takes.

Cloudflare wants ``key_base64`` (standard base64 of the raw bytes, PKCS#8 DER or SPKI DER) for the
``raw``, ``pkcs8`` and ``spki`` formats, and ``key_jwk`` (a JSON object) for ``jwk``. Vault holds the
key in one of four encodings, chosen per binding in the config:

- ``base64``: standard or URL-safe alphabet (not both at once), padding optional, whitespace and
  line breaks ignored (keys are often pasted wrapped at 64 columns). Anything else is refused, so a
  PEM block or hex text stored by mistake is caught here instead of becoming garbage bytes.
- ``hex``: case-insensitive, whitespace and ``:`` separators ignored (``openssl`` prints colons).
- ``pem``: exactly one PEM block whose label fits the format (``PRIVATE KEY`` for pkcs8,
  ``PUBLIC KEY`` for spki); PKCS#1 / SEC1 / encrypted blocks are refused with a conversion hint.
- ``json``: a JWK, as a JSON object in Vault or as JSON text; it must have a ``kty``.

There is no crypto library here, only sanity checks that catch the common mistakes: raw keys are not
empty, AES raw keys are 16, 24 or 32 bytes (and match ``algorithm.length`` when given), DER is one
complete ASN.1 SEQUENCE whose first elements fit PKCS#8 or SPKI. Every refusal is a
``ValueRejected`` that says why without key bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from syncd.config import SecretKeyBinding
from syncd.errors import ValueRejected

PKCS8_LABEL = "PRIVATE KEY"
SPKI_LABEL = "PUBLIC KEY"
AES_KEY_SIZES = (16, 24, 32)

_PEM_BLOCK = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----(?P<body>.*?)-----END (?P<end>[A-Z0-9 ]+)-----",
    re.DOTALL,
)
_WHITESPACE = re.compile(r"\s+")
_PKCS8_CONVERT = "convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem -out pkcs8.pem`"
_LABEL_HINTS: dict[tuple[str, str], str] = {
    (PKCS8_LABEL, "RSA PRIVATE KEY"): f"it is a PKCS#1 RSA key, format 'pkcs8' needs PKCS#8: {_PKCS8_CONVERT}",
    (PKCS8_LABEL, "EC PRIVATE KEY"): f"it is a SEC1 EC key, format 'pkcs8' needs PKCS#8: {_PKCS8_CONVERT}",
    (PKCS8_LABEL, "ENCRYPTED PRIVATE KEY"): f"it is encrypted; Cloudflare needs it unencrypted: {_PKCS8_CONVERT}",
    (PKCS8_LABEL, "PUBLIC KEY"): "it is a public key; format 'pkcs8' needs a private key (or use format 'spki')",
    (SPKI_LABEL, "RSA PUBLIC KEY"): (
        "it is a PKCS#1 RSA public key, format 'spki' needs SubjectPublicKeyInfo: "
        "convert it with `openssl rsa -RSAPublicKey_in -pubout -in key.pem -out spki.pem`"
    ),
    (SPKI_LABEL, "CERTIFICATE"): (
        "it is a certificate; extract its public key with `openssl x509 -pubkey -noout -in cert.pem`"
    ),
    (SPKI_LABEL, "PRIVATE KEY"): "it is a private key; format 'spki' needs a public key (or use format 'pkcs8')",
}
_EXPECTED_LABEL = {"pkcs8": PKCS8_LABEL, "spki": SPKI_LABEL}


class KeyMaterialError(ValueError):
    """Why key material was refused; never carries key bytes. Turned into ``ValueRejected``."""


def encode_key_material(binding: SecretKeyBinding, raw: Any) -> dict[str, Any]:
    """The key part of a ``secret_key`` body: ``{"key_base64": ...}`` or ``{"key_jwk": {...}}``.

    ``raw`` is the Vault value as stored (usually a string; a JWK may be a JSON object).
    Raises ``ValueRejected(binding.binding, why)``.
    """
    try:
        if binding.format == "jwk":
            return {"key_jwk": _jwk(raw)}
        der_or_raw = _decode(binding, raw)
        if binding.format == "raw":
            _check_raw(binding, der_or_raw)
        else:
            check_der_structure(der_or_raw, binding.format)
        return {"key_base64": base64.b64encode(der_or_raw).decode("ascii")}
    except KeyMaterialError as exc:
        where = f"{binding.material_from} ({binding.format}, {binding.value_encoding})"
        raise ValueRejected(binding.binding, f"{where}: {exc}") from None


def pem_to_der(text: str, expected_label: str) -> bytes:
    """The DER bytes of the single PEM block in ``text``, whose label must be ``expected_label``.

    Raises ``KeyMaterialError`` (a ``ValueError``) naming the label found, never the content.
    """
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise KeyMaterialError(f"no PEM block found (expected '-----BEGIN {expected_label}-----')")
    if len(blocks) > 1:
        raise KeyMaterialError(f"{len(blocks)} PEM blocks found, expected exactly one")
    block = blocks[0]
    label = block.group("label")
    if block.group("end") != label:
        raise KeyMaterialError(f"PEM block begins with {label!r} but ends with {block.group('end')!r}")
    if label != expected_label:
        hint = _LABEL_HINTS.get((expected_label, label), f"expected {expected_label!r}")
        raise KeyMaterialError(f"PEM label is {label!r}: {hint}")
    body_lines = [line.strip() for line in block.group("body").strip().splitlines()]
    if any(":" in line for line in body_lines):
        # RFC 1421 headers (Proc-Type, DEK-Info) only appear in legacy encrypted keys.
        raise KeyMaterialError(f"PEM block has headers (a legacy encrypted key?); {_PKCS8_CONVERT}")
    return _strict_base64("".join(body_lines), what="PEM body")


def check_der_structure(der: bytes, fmt: str) -> None:
    """DER whose first elements fit PKCS#8 or SPKI, which tells them from PKCS#1 and SEC1 keys.

    PKCS#8 is SEQUENCE { INTEGER version (0 or 1), SEQUENCE algorithm, ... }; SEC1 has version 1
    followed by an OCTET STRING and PKCS#1 a second INTEGER. SPKI is SEQUENCE { SEQUENCE algorithm,
    BIT STRING }; a PKCS#1 public key starts with an INTEGER.
    """
    header = check_der_sequence(der)
    inner = der[header : header + 4]
    if fmt == "pkcs8" and not (inner[:2] == b"\x02\x01" and inner[2:3] in (b"\x00", b"\x01") and inner[3:4] == b"\x30"):
        raise KeyMaterialError(f"DER is not a PKCS#8 private key (a PKCS#1 or SEC1 key?); {_PKCS8_CONVERT}")
    if fmt == "spki" and inner[:1] != b"\x30":
        raise KeyMaterialError("DER is not a SubjectPublicKeyInfo (a PKCS#1 public key?)")


def check_der_sequence(der: bytes) -> int:
    """DER that is one complete ASN.1 SEQUENCE, nothing after it; returns its header length."""
    if not der:
        raise KeyMaterialError("key is empty")
    if der[0] != 0x30:
        raise KeyMaterialError("not DER: does not start with an ASN.1 SEQUENCE (0x30)")
    if len(der) < 2:
        raise KeyMaterialError("not DER: truncated length")
    first = der[1]
    if first < 0x80:
        header, length = 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(der) < 2 + count:
            raise KeyMaterialError("not DER: bad length encoding")
        header, length = 2 + count, int.from_bytes(der[2 : 2 + count], "big")
    if header + length != len(der):
        raise KeyMaterialError(f"not DER: the SEQUENCE says {header + length} bytes, the key has {len(der)}")
    return header


def _decode(binding: SecretKeyBinding, raw: Any) -> bytes:
    if not isinstance(raw, str):
        raise KeyMaterialError(f"holds a JSON {_json_type(raw)}, expected text")
    encoding = binding.value_encoding
    if encoding == "pem":
        return pem_to_der(raw, _EXPECTED_LABEL[binding.format])
    if encoding == "hex":
        return _hex(raw)
    return _strict_base64(raw, what="base64")


def _strict_base64(text: str, *, what: str) -> bytes:
    compact = _WHITESPACE.sub("", text)
    if compact.startswith("-----BEGIN"):
        raise KeyMaterialError(f"{what} text is a PEM block; set encoding = 'pem'")
    has_standard = "+" in compact or "/" in compact
    has_urlsafe = "-" in compact or "_" in compact
    if has_standard and has_urlsafe:
        raise KeyMaterialError(f"{what} mixes the standard and URL-safe alphabets")
    if has_urlsafe:
        compact = compact.translate(str.maketrans("-_", "+/"))
    unpadded = compact.rstrip("=")
    if len(compact) - len(unpadded) > 2 or len(unpadded) % 4 == 1:
        raise KeyMaterialError(f"{what} has a bad length or padding")
    padded = unpadded + "=" * (-len(unpadded) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise KeyMaterialError(f"{what} has characters outside the base64 alphabet") from None


def _hex(text: str) -> bytes:
    compact = _WHITESPACE.sub("", text).replace(":", "")
    compact = compact.removeprefix("0x").removeprefix("0X")
    try:
        return bytes.fromhex(compact)
    except ValueError:
        raise KeyMaterialError("not hex (an even number of 0-9, a-f)") from None


def _check_raw(binding: SecretKeyBinding, key: bytes) -> None:
    if not key:
        raise KeyMaterialError("key is empty")
    name = str(binding.algorithm["name"]).upper()
    if name.startswith("AES"):
        if len(key) not in AES_KEY_SIZES:
            raise KeyMaterialError(f"an AES key is 16, 24 or 32 bytes, this one is {len(key)}")
        length = binding.algorithm.get("length")
        if isinstance(length, int) and length != len(key) * 8:
            raise KeyMaterialError(f"algorithm.length is {length} bits but the key is {len(key) * 8}")


def _jwk(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise KeyMaterialError("not JSON text (a JWK is expected)") from None
    if not isinstance(raw, dict):
        raise KeyMaterialError(f"a JWK is a JSON object, this is a JSON {_json_type(raw)}")
    kty = raw.get("kty")
    if not isinstance(kty, str) or not kty:
        raise KeyMaterialError("a JWK needs a 'kty' member")
    if kty == "oct" and not raw.get("k"):
        raise KeyMaterialError("an 'oct' JWK needs a non-empty 'k' member")
    return dict(raw)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"
