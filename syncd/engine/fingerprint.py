"""Keyed fingerprints of secret bodies: how syncd tells "changed" from "same" without keeping values.

A plain hash of a short secret (a 6-digit PIN, a dictionary word) can be reversed by brute force, so
fingerprints are HMAC-SHA256 under a random key that the state store creates once, or under the
operator's ``sync.fingerprint_key`` kept outside the state file. Without the key, a fingerprint says
nothing about the value.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NoReturn

from syncd.model import SecretBody, SecretData

MIN_KEY_BYTES = 16
# Keeps a KV data fingerprint from ever equalling a body fingerprint of the same bytes.
_DATA_DOMAIN = b"syncd/kv-data\x00"


class Fingerprinter:
    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a fingerprint key needs at least {MIN_KEY_BYTES} bytes")
        self._key = bytes(key)

    def of(self, body: SecretBody) -> str:
        """Hex HMAC-SHA256 of the body's canonical bytes (value and metadata)."""
        return hmac.new(self._key, body.canonical_bytes(), hashlib.sha256).hexdigest()

    def of_data(self, data: SecretData) -> str:
        """Hex HMAC-SHA256 of a whole secret's data, for KV v1 (which has no versions)."""
        payload = _DATA_DOMAIN + data.as_json().reveal().encode()
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "Fingerprinter(key=***)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("Fingerprinter holds a key and cannot be pickled")
