"""Validation of secret bodies, binding names and script names, as the real API does it.

A secret body is ``secret_text`` (``name``, ``text``) or ``secret_key`` (``name``, ``format``
raw|pkcs8|spki|jwk, ``algorithm`` object, ``usages`` subset of the WebCrypto usages,
``key_base64`` for raw/pkcs8/spki, ``key_jwk`` for jwk), per the API schema in the official SDK.
Failures are 400 with code 10021 (UNVERIFIED per field, see ``envelope``) or 10054 (too large).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from syncd.devstack.cloudflare.config import EmulatorConfig
from syncd.devstack.cloudflare.envelope import (
    INVALID_BINDING,
    INVALID_SCRIPT_NAME,
    TEXT_BINDING_TOO_LARGE,
    ApiError,
)

SCRIPT_NAME_RE = re.compile(r"^[a-z0-9_][a-z0-9-_]*$")
JS_IDENTIFIER_RE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
MAX_ANY_NAME_LENGTH = 255
SECRET_TYPES = ("secret_text", "secret_key")
KEY_FORMATS = ("raw", "pkcs8", "spki", "jwk")
KEY_USAGES = frozenset({"encrypt", "decrypt", "sign", "verify", "deriveKey", "deriveBits", "wrapKey", "unwrapKey"})


def invalid(name: str, kind: str, reason: str) -> ApiError:
    return ApiError(400, INVALID_BINDING, f"binding {name} of type {kind} is invalid: {reason}")


def is_valid_script_name(name: str) -> bool:
    return bool(SCRIPT_NAME_RE.match(name))


def check_script_name(name: str) -> None:
    if not is_valid_script_name(name):
        raise ApiError(400, INVALID_SCRIPT_NAME, "workers.api.error.invalid_script_name")


def check_binding_name(name: Any, kind: str, config: EmulatorConfig) -> str:
    if not isinstance(name, str) or not name:
        raise invalid(str(name), kind, "name is required and must be a non-empty string")
    if config.binding_name_policy == "identifier" and not JS_IDENTIFIER_RE.match(name):
        raise invalid(name, kind, "name must be a valid JavaScript identifier")
    if len(name) > MAX_ANY_NAME_LENGTH:
        raise invalid(name, kind, f"name must be at most {MAX_ANY_NAME_LENGTH} characters")
    return name


def validate_secret(body: Any, config: EmulatorConfig, expected_name: str | None = None) -> dict[str, Any]:
    """The stored form of one secret body (value included); raises ``ApiError`` when invalid."""
    if not isinstance(body, dict):
        raise invalid(str(expected_name), "unknown", "a secret must be a JSON object")
    kind = body.get("type")
    if kind not in SECRET_TYPES:
        raise invalid(str(body.get("name", expected_name)), str(kind), "type must be secret_text or secret_key")
    raw_name = body.get("name", expected_name)
    name = check_binding_name(raw_name, str(kind), config)
    if expected_name is not None and name != expected_name:
        raise invalid(name, str(kind), f"name does not match the key {expected_name!r}")
    if kind == "secret_text":
        return _validate_text(name, body, config)
    return _validate_key(name, body, config)


def _check_size(name: str, value: str, config: EmulatorConfig) -> None:
    size = len(value.encode())
    if size > config.max_value_bytes:
        raise ApiError(
            400,
            TEXT_BINDING_TOO_LARGE,
            f"workers.api.error.text_binding_too_large: binding {name} is {size} bytes, "
            f"the limit is {config.max_value_bytes} bytes",
        )


def _validate_text(name: str, body: dict[str, Any], config: EmulatorConfig) -> dict[str, Any]:
    text = body.get("text")
    if not isinstance(text, str):
        raise invalid(name, "secret_text", "text is required and must be a string")
    _check_size(name, text, config)
    return {"name": name, "type": "secret_text", "text": text}


def _validate_key(name: str, body: dict[str, Any], config: EmulatorConfig) -> dict[str, Any]:
    kind = "secret_key"
    key_format = body.get("format")
    if key_format not in KEY_FORMATS:
        raise invalid(name, kind, f"format must be one of {', '.join(KEY_FORMATS)}")
    algorithm = body.get("algorithm")
    if not isinstance(algorithm, dict):
        raise invalid(name, kind, "algorithm is required and must be an object")
    usages = body.get("usages")
    if not isinstance(usages, list) or not all(isinstance(u, str) for u in usages):
        raise invalid(name, kind, "usages is required and must be a list of strings")
    unknown = sorted(set(usages) - KEY_USAGES)
    if unknown:
        raise invalid(name, kind, f"unknown usages {unknown}")
    stored: dict[str, Any] = {
        "name": name,
        "type": kind,
        "format": key_format,
        "algorithm": algorithm,
        "usages": list(usages),
    }
    if key_format == "jwk":
        key_jwk = body.get("key_jwk")
        if not isinstance(key_jwk, dict):
            raise invalid(name, kind, 'key_jwk is required and must be an object when format is "jwk"')
        _check_size(name, json.dumps(key_jwk), config)
        stored["key_jwk"] = key_jwk
        return stored
    key_base64 = body.get("key_base64")
    if not isinstance(key_base64, str) or not key_base64:
        raise invalid(name, kind, f'key_base64 is required when format is "{key_format}"')
    try:
        base64.b64decode(key_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(name, kind, "key_base64 is not valid base64") from exc
    _check_size(name, key_base64, config)
    stored["key_base64"] = key_base64
    return stored


def public_view(secret: dict[str, Any]) -> dict[str, Any]:
    """What the API returns for a secret: never ``text``, ``key_base64`` or ``key_jwk``."""
    view: dict[str, Any] = {"name": secret["name"], "type": secret["type"]}
    if secret["type"] == "secret_key":
        view.update(format=secret["format"], algorithm=secret["algorithm"], usages=secret["usages"])
    return view
