"""What the emulated Secrets Store accepts as input: names, values, scopes, comments and JSON bodies,
each refused with the API's 1001 validation error (``SecretsStoreConfig.validation_status``; the
messages are the ones the module docstring of ``secrets_store`` cites)."""

from __future__ import annotations

import re
from typing import Any

from syncd.devstack.cloudflare.envelope import ApiError
from syncd.devstack.cloudflare.secrets_store_config import SecretsStoreConfig

SCOPES = ("workers", "ai_gateway", "dex", "access", "containers", "websearch")
VALIDATION = 1001


def invalid(config: SecretsStoreConfig, message: str) -> ApiError:
    return ApiError(config.validation_status, VALIDATION, message)


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, VALIDATION, "invalid_json_body")
    return body


def new_item(config: SecretsStoreConfig, item: Any) -> dict[str, Any]:
    """One item of a create body, checked: ``name``, ``value``, ``scopes``, ``comment``."""
    payload = json_object(item)
    return {
        "name": check_name(config, payload.get("name")),
        "value": check_value(config, payload.get("value")),
        "scopes": check_scopes(config, payload.get("scopes")),
        "comment": check_comment(config, payload.get("comment", "")),
    }


def check_name(config: SecretsStoreConfig, name: Any) -> str:
    if name is None or name == "":
        raise invalid(config, "secret_name_empty")
    if not isinstance(name, str) or len(name) > config.max_name_length or not re.match(config.name_pattern, name):
        raise invalid(config, "invalid_secret_name")
    return name


def check_value(config: SecretsStoreConfig, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(config, "invalid_json_body")
    if len(value.encode()) > config.max_value_bytes:
        raise invalid(config, "secret_value_too_long")
    return value


def check_scopes(config: SecretsStoreConfig, scopes: Any) -> list[str]:
    if scopes is None or scopes == []:
        raise invalid(config, "secret_scopes_empty")
    if not isinstance(scopes, list) or not all(scope in SCOPES for scope in scopes):
        raise invalid(config, "secret_scope_invalid")
    return list(dict.fromkeys(scopes))


def check_comment(config: SecretsStoreConfig, comment: Any) -> str:
    if not isinstance(comment, str):
        raise invalid(config, "invalid_json_body")
    return comment


__all__ = [
    "SCOPES",
    "VALIDATION",
    "check_comment",
    "check_name",
    "check_scopes",
    "check_value",
    "invalid",
    "json_object",
    "new_item",
]
