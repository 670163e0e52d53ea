"""Key material in every format and encoding syncd accepts, and checks of what a Worker did with it.

A :class:`KeyCase` is one ``[[mapping.secret_key]]``: the text Vault holds (``vault_value``), the
binding's format, encoding, algorithm and usages, and :meth:`KeyCase.check`, which takes the
default Worker's report for the binding and the text read back from Vault and verifies the
operation with ``cryptography``: a signature or MAC over the fixed message verifies, a
ciphertext decrypts to it, a signature the test made verifies in the Worker (and a tampered one
does not). Private halves the Worker never sees (for public-key bindings) stay with the case.
"""

from __future__ import annotations

import base64
import functools
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from syncd.devstack.workers.default_worker import MESSAGE

MESSAGE_BYTES = MESSAGE.encode()
PSS_SALT = 32
Check = Callable[[dict[str, Any], "KeyCase"], None]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


HMAC_KEY = bytes(range(32))
AES_KEY = bytes(range(100, 132))


def der_private(key: Any) -> bytes:
    return bytes(
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def der_public(key: Any) -> bytes:
    return bytes(
        public_of(key).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def encoded(der: bytes, encoding: str, label: str) -> str:
    if encoding == "pem":
        body = base64.encodebytes(der).decode()
        return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n"
    if encoding == "hex":
        return der.hex()
    return base64.b64encode(der).decode()


def key_from_vault(case: KeyCase, vault_text: str) -> Any:
    """The key Vault holds, parsed by ``cryptography`` (a JWK by hand: it has no JWK loader)."""
    if case.format == "jwk":
        jwk = json.loads(vault_text)
        if jwk["kty"] == "oct":
            return unb64url(jwk["k"])
        if jwk["kty"] == "EC":
            x, y = (int.from_bytes(unb64url(jwk[c]), "big") for c in ("x", "y"))
            public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1())
            if "d" in jwk:
                return ec.EllipticCurvePrivateNumbers(int.from_bytes(unb64url(jwk["d"]), "big"), public).private_key()
            return public.public_key()
        if jwk["kty"] == "OKP":
            if "d" in jwk:
                return ed25519.Ed25519PrivateKey.from_private_bytes(unb64url(jwk["d"]))
            return ed25519.Ed25519PublicKey.from_public_bytes(unb64url(jwk["x"]))
        n, e = (int.from_bytes(unb64url(jwk[c]), "big") for c in ("n", "e"))
        return rsa.RSAPublicNumbers(e, n).public_key()
    if case.encoding == "pem":
        if case.format == "pkcs8":
            return serialization.load_pem_private_key(vault_text.encode(), password=None)
        return serialization.load_pem_public_key(vault_text.encode())
    raw = bytes.fromhex(vault_text) if case.encoding == "hex" else base64.b64decode(vault_text)
    if case.format == "raw":
        return raw
    if case.format == "pkcs8":
        return serialization.load_der_private_key(raw, password=None)
    return serialization.load_der_public_key(raw)


def public_of(key: Any) -> Any:
    return key.public_key() if hasattr(key, "public_key") else key


def check_hmac(report: dict[str, Any], case: KeyCase) -> None:
    key = case.vault_key
    assert report["operation"] == "sign"
    expected = hmac.new(key, MESSAGE_BYTES, "sha256").digest()
    assert hmac.compare_digest(base64.b64decode(report["result_base64"]), expected)


def check_aes_gcm(report: dict[str, Any], case: KeyCase) -> None:
    assert report["operation"] == "encrypt"
    iv = base64.b64decode(report["params"]["iv_base64"])
    assert AESGCM(case.vault_key).decrypt(iv, base64.b64decode(report["result_base64"]), None) == MESSAGE_BYTES


def check_signature(report: dict[str, Any], case: KeyCase) -> None:
    """A signature the Worker made verifies with the public half of the key in Vault."""
    assert report["operation"] == "sign"
    signature = base64.b64decode(report["result_base64"])
    public = public_of(case.vault_key)
    name = case.algorithm["name"]
    if name == "RSASSA-PKCS1-v1_5":
        public.verify(signature, MESSAGE_BYTES, padding.PKCS1v15(), hashes.SHA256())
    elif name == "RSA-PSS":
        public.verify(signature, MESSAGE_BYTES, padding.PSS(padding.MGF1(hashes.SHA256()), PSS_SALT), hashes.SHA256())
    elif name == "ECDSA":  # WebCrypto gives r || s, 32 bytes each for P-256
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        public.verify(encode_dss_signature(r, s), MESSAGE_BYTES, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(signature, MESSAGE_BYTES)


def check_oaep(report: dict[str, Any], case: KeyCase) -> None:
    """The Worker encrypted with the public key in Vault; the private half (the test's) decrypts."""
    assert report["operation"] == "encrypt"
    assert public_of(case.private).public_numbers() == case.vault_key.public_numbers()
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    assert case.private.decrypt(base64.b64decode(report["result_base64"]), oaep) == MESSAGE_BYTES


def check_verify(report: dict[str, Any], case: KeyCase) -> None:
    """The Worker verified the test's signature (``case.input``) with the public key from Vault."""
    assert report["operation"] == "verify"
    assert report["verified"] is True
    assert public_of(case.private).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == der_public(case.vault_key)


def sign_as_test(private: Any, name: str) -> bytes:
    if name == "RSASSA-PKCS1-v1_5":
        return bytes(private.sign(MESSAGE_BYTES, padding.PKCS1v15(), hashes.SHA256()))
    if name == "ECDSA":
        r, s = decode_dss_signature(private.sign(MESSAGE_BYTES, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return bytes(private.sign(MESSAGE_BYTES))


@dataclass
class KeyCase:
    id: str
    format: str
    encoding: str
    algorithm: dict[str, Any]
    usages: list[str]
    vault_value: str
    checker: Check
    private: Any = None  # the private half the Worker does not get (public-key bindings)
    input: bytes | None = None  # a signature for the Worker to verify
    vault_key: Any = field(default=None, repr=False)  # set from what Vault returns

    @property
    def script(self) -> str:
        return "k-" + self.id.replace("_", "-")

    def mapping_key(self) -> dict[str, Any]:
        return {
            "vault_key": "material",
            "binding": "KEY",
            "format": self.format,
            "algorithm": self.algorithm,
            "usages": self.usages,
            "encoding": self.encoding,
        }

    def check(self, report: dict[str, Any], vault_text: str) -> None:
        assert "error" not in report, report.get("error")
        self.vault_key = key_from_vault(self, vault_text)
        self.checker(report, self)


def _jwk_public_ec(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }


def _jwk_private_ec(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    return {**_jwk_public_ec(key), "d": b64url(key.private_numbers().private_value.to_bytes(32, "big"))}


def _jwk_ed(key: ed25519.Ed25519PrivateKey) -> dict[str, str]:
    raw_private = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw_public), "d": b64url(raw_private)}


def _jwk_rsa_public(key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    return {"kty": "RSA", "n": b64url(n), "e": b64url(numbers.e.to_bytes(3, "big")), "alg": "RSA-OAEP-256"}


@functools.cache
def cases_by_id() -> dict[str, KeyCase]:
    """Made on first use (RSA key generation is not free), the same objects afterwards."""
    return {case.id: case for case in all_cases()}


def all_cases() -> list[KeyCase]:
    rsa_private, ec_private, ed_private = rsa_key(), ec_key(), ed_key()
    hmac_alg = {"name": "HMAC", "hash": "SHA-256"}
    rsassa = {"name": "RSASSA-PKCS1-v1_5", "hash": "SHA-256"}
    pss = {"name": "RSA-PSS", "hash": "SHA-256"}
    oaep = {"name": "RSA-OAEP", "hash": "SHA-256"}
    ecdsa = {"name": "ECDSA", "namedCurve": "P-256"}
    ed = {"name": "Ed25519"}
    gcm = {"name": "AES-GCM", "length": 256}
    private_der = {"rsa": der_private(rsa_private), "ec": der_private(ec_private), "ed": der_private(ed_private)}
    public_der = {"rsa": der_public(rsa_private), "ec": der_public(ec_private), "ed": der_public(ed_private)}
    return [
        KeyCase(
            "hmac_raw_base64", "raw", "base64", hmac_alg, ["sign"], base64.b64encode(HMAC_KEY).decode(), check_hmac
        ),
        KeyCase("hmac_raw_hex", "raw", "hex", hmac_alg, ["sign", "verify"], HMAC_KEY.hex(), check_hmac),
        KeyCase(
            "aes_gcm_raw_base64", "raw", "base64", gcm, ["encrypt"], base64.b64encode(AES_KEY).decode(), check_aes_gcm
        ),
        KeyCase(
            "rsassa_pkcs8_pem",
            "pkcs8",
            "pem",
            rsassa,
            ["sign"],
            encoded(private_der["rsa"], "pem", "PRIVATE KEY"),
            check_signature,
        ),
        KeyCase(
            "rsa_pss_pkcs8_base64",
            "pkcs8",
            "base64",
            pss,
            ["sign"],
            encoded(private_der["rsa"], "base64", ""),
            check_signature,
        ),
        KeyCase(
            "ecdsa_pkcs8_hex", "pkcs8", "hex", ecdsa, ["sign"], encoded(private_der["ec"], "hex", ""), check_signature
        ),
        KeyCase(
            "ed25519_pkcs8_pem",
            "pkcs8",
            "pem",
            ed,
            ["sign"],
            encoded(private_der["ed"], "pem", "PRIVATE KEY"),
            check_signature,
        ),
        KeyCase(
            "rsa_oaep_spki_pem",
            "spki",
            "pem",
            oaep,
            ["encrypt"],
            encoded(public_der["rsa"], "pem", "PUBLIC KEY"),
            check_oaep,
            private=rsa_private,
        ),
        KeyCase(
            "ecdsa_spki_base64",
            "spki",
            "base64",
            ecdsa,
            ["verify"],
            encoded(public_der["ec"], "base64", ""),
            check_verify,
            private=ec_private,
            input=sign_as_test(ec_private, "ECDSA"),
        ),
        KeyCase(
            "rsassa_spki_hex",
            "spki",
            "hex",
            rsassa,
            ["verify"],
            encoded(public_der["rsa"], "hex", ""),
            check_verify,
            private=rsa_private,
            input=sign_as_test(rsa_private, "RSASSA-PKCS1-v1_5"),
        ),
        KeyCase(
            "ed25519_spki_pem",
            "spki",
            "pem",
            ed,
            ["verify"],
            encoded(public_der["ed"], "pem", "PUBLIC KEY"),
            check_verify,
            private=ed_private,
            input=sign_as_test(ed_private, "Ed25519"),
        ),
        KeyCase(
            "hmac_jwk",
            "jwk",
            "json",
            hmac_alg,
            ["sign"],
            json.dumps({"kty": "oct", "k": b64url(HMAC_KEY), "alg": "HS256"}),
            check_hmac,
        ),
        KeyCase(
            "aes_gcm_jwk",
            "jwk",
            "json",
            gcm,
            ["encrypt"],
            json.dumps({"kty": "oct", "k": b64url(AES_KEY), "alg": "A256GCM"}),
            check_aes_gcm,
        ),
        KeyCase(
            "ecdsa_jwk_private",
            "jwk",
            "json",
            ecdsa,
            ["sign"],
            json.dumps(_jwk_private_ec(ec_private)),
            check_signature,
        ),
        KeyCase("ed25519_jwk_private", "jwk", "json", ed, ["sign"], json.dumps(_jwk_ed(ed_private)), check_signature),
        KeyCase(
            "rsa_oaep_jwk_public",
            "jwk",
            "json",
            oaep,
            ["encrypt"],
            json.dumps(_jwk_rsa_public(rsa_private)),
            check_oaep,
            private=rsa_private,
        ),
    ]
