"""Holders of secret material never show it: repr, str, format, pickling, logging, tracebacks."""

from __future__ import annotations

import logging
import pickle
import traceback

import pytest

from syncd.model import BindingKind, SecretBody, SecretData, SecretValue

CANARY = "canary-7f3a9c-do-not-leak"


def _holders() -> list[object]:
    return [
        SecretValue(CANARY),
        SecretData({"k": CANARY, "n": {"deep": CANARY}}),
        SecretBody({"name": "API_KEY", "type": "secret_text", "text": CANARY}),
    ]


@pytest.mark.parametrize("holder", _holders(), ids=["value", "data", "body"])
def test_text_forms_are_masked(holder: object) -> None:
    percent = "%s" % (holder,)  # noqa: UP031 - the logging module formats this way
    for text in (repr(holder), str(holder), f"{holder}", f"{holder!r}", percent, repr([holder])):
        assert CANARY not in text
        assert "***" in text


@pytest.mark.parametrize("holder", _holders(), ids=["value", "data", "body"])
def test_pickling_is_refused(holder: object) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(holder)


def test_logging_and_tracebacks_do_not_reveal(caplog: pytest.LogCaptureFixture) -> None:
    value = SecretValue(CANARY)
    logging.getLogger("t").warning("value is %s / %r", value, value)
    try:
        raise RuntimeError(f"failed with {value}")
    except RuntimeError:
        rendered = traceback.format_exc()
    assert CANARY not in caplog.text
    assert CANARY not in rendered


def test_reveal_is_explicit() -> None:
    assert SecretValue(CANARY).reveal() == CANARY
    data = SecretData({"a": "x", "n": 1, "o": {"b": True}})
    assert data.text("a").reveal() == "x"
    assert data.text("n").reveal() == "1"
    assert data.text("o").reveal() == '{"b": true}'
    assert data.as_json().reveal() == '{"a":"x","n":1,"o":{"b":true}}'
    assert data.keys() == ["a", "n", "o"]


def test_body_metadata_strips_every_value_field() -> None:
    key = SecretBody(
        {
            "name": "K",
            "type": "secret_key",
            "format": "raw",
            "algorithm": {"name": "HMAC"},
            "usages": ["sign"],
            "key_base64": CANARY,
        }
    )
    jwk = SecretBody({"name": "J", "type": "secret_key", "format": "jwk", "key_jwk": {"k": CANARY}})
    for body in (key, jwk, _holders()[2]):
        assert isinstance(body, SecretBody)
        assert CANARY not in repr(body.metadata())
    assert key.kind is BindingKind.SECRET_KEY
    assert key.name == "K"


def test_equality_compares_values_and_holders_are_unhashable() -> None:
    assert SecretValue("a") == SecretValue("a")
    assert SecretValue("a") != SecretValue("b")
    assert SecretBody({"name": "A", "type": "secret_text", "text": "1"}) != SecretBody(
        {"name": "A", "type": "secret_text", "text": "2"}
    )
    with pytest.raises(TypeError):
        hash(SecretValue("a"))
