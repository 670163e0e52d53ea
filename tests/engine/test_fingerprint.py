"""Keyed fingerprints: stable, value- and key-sensitive, and silent about the key."""

from __future__ import annotations

import hashlib
import hmac
import pickle

import pytest

from syncd.engine.fingerprint import Fingerprinter
from syncd.model import SecretBody, SecretData
from tests.engine.conftest import CANARY, CANARY_2, leaks

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def text_body(value: str, name: str = "API_KEY") -> SecretBody:
    return SecretBody({"name": name, "type": "secret_text", "text": value})


def test_of_is_hex_hmac_sha256_of_canonical_bytes() -> None:
    body = text_body(CANARY)
    expected = hmac.new(KEY, body.canonical_bytes(), hashlib.sha256).hexdigest()
    assert Fingerprinter(KEY).of(body) == expected


def test_same_body_same_fingerprint_regardless_of_key_order() -> None:
    one = SecretBody({"name": "A", "type": "secret_text", "text": CANARY})
    two = SecretBody({"text": CANARY, "type": "secret_text", "name": "A"})
    assert Fingerprinter(KEY).of(one) == Fingerprinter(KEY).of(two)


def test_fingerprint_changes_with_value_name_and_key() -> None:
    fp = Fingerprinter(KEY)
    base = fp.of(text_body(CANARY))
    assert fp.of(text_body(CANARY_2)) != base
    assert fp.of(text_body(CANARY, name="OTHER")) != base
    assert Fingerprinter(OTHER_KEY).of(text_body(CANARY)) != base


def test_fingerprint_is_not_a_plain_hash_of_the_value() -> None:
    body = text_body(CANARY)
    digest = Fingerprinter(KEY).of(body)
    assert digest not in (
        hashlib.sha256(CANARY.encode()).hexdigest(),
        hashlib.sha256(body.canonical_bytes()).hexdigest(),
    )
    assert leaks(digest) == []


def test_of_data_tracks_content_and_differs_from_a_body_of_the_same_json() -> None:
    fp = Fingerprinter(KEY)
    data = SecretData({"b": CANARY, "a": 1})
    assert fp.of_data(data) == fp.of_data(SecretData({"a": 1, "b": CANARY}))
    assert fp.of_data(data) != fp.of_data(SecretData({"a": 1, "b": CANARY_2}))
    lookalike = SecretData({"name": "A", "type": "secret_text", "text": CANARY})
    assert fp.of_data(lookalike) != fp.of(text_body(CANARY, name="A"))


def test_repr_and_str_hide_the_key() -> None:
    fp = Fingerprinter(KEY)
    for text in (repr(fp), str(fp), f"{fp}"):
        assert text == "Fingerprinter(key=***)"


def test_fingerprinter_cannot_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Fingerprinter(KEY))


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Fingerprinter(b"short")
