"""Switches of the emulator's Secrets Store API (``EmulatorConfig.secrets_store``).

Change them with ``CloudflareEmulator(config=EmulatorConfig(secrets_store=SecretsStoreConfig(...)))``
or at run time with ``POST /__devstack/config {"secrets_store": {"secret_quota": 5}}``.

Sourced (see ``secrets_store`` for the citations):

- ``max_stores`` (1): one store per account; a second create is 400 / 1003 ``maximum_stores_exceeded``.
- ``secret_quota`` (100): secrets per account, as ``GET /quota`` reports it (docs, Sep 2026).
- ``max_value_bytes`` (65536): the value limit (API reference, SDK 5.9 ``SecretEditParams``).
- ``max_per_page`` (100): the documented ``per_page`` maximum of the listings. Infisical reports a
  cap of 50 and whether the real API clamps or refuses a larger value is UNVERIFIED: the emulator
  clamps and reports the clamped ``per_page`` in ``result_info``.

UNVERIFIED (no primary source states them):

- ``default_per_page`` (20): the page size without ``per_page`` (the API reference's example
  ``result_info`` says 20).
- ``total_pages`` (False): whether ``result_info`` carries ``total_pages``; Infisical's tests say
  the Secrets Store listings report ``total_count`` but never ``total_pages``.
- ``name_pattern`` (``^[A-Za-z0-9_-]+$``, Infisical's rule; wrangler checks ``^[A-z0-9-_]+$``) and
  ``max_name_length`` (255): answered ``invalid_secret_name``.
- ``activation_seconds`` (1.0): how long a created or re-valued secret stays ``pending`` before it
  is ``active``, on the emulator clock (the API's examples answer ``pending`` right after a write).
- ``deleted_retention_seconds`` (0.0): how long a deleted secret is still listed with status
  ``deleted`` (the SDK's status enum has it and secretspec filters such rows); 0 removes it at once.
- ``not_found_status`` (404): the status of ``store_not_found`` / ``secret_not_found`` (code 1001).
- ``validation_status`` (400): the status of the 1001 validation errors.
- ``duplicate_name_status`` (409) / ``duplicate_name_code`` (1003): a create or duplicate whose name
  is taken (``secret_name_already_exists``; the code comes from a third-party error matcher).
- ``store_not_empty_code`` (1003): the code of the 409 ``store_not_empty`` (the status and message
  are in SDK 5.9's ``stores.delete`` docstring, the code is not).
- ``quota_exceeded_status`` (400) / ``quota_exceeded_code`` (1003): a create past the quota
  (message ``maximum_secrets_exceeded``; modelled on ``maximum_stores_exceeded``).
- ``scopes_filter`` ("all"): a listing's ``scopes`` keeps secrets holding every given scope
  ("all") or at least one ("any").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace
from typing import Any

SCOPES_FILTERS = ("all", "any")
_FLOATS = ("activation_seconds", "deleted_retention_seconds")


@dataclass(frozen=True)
class SecretsStoreConfig:
    max_stores: int = 1
    secret_quota: int = 100
    max_value_bytes: int = 65536
    default_per_page: int = 20
    max_per_page: int = 100
    total_pages: bool = False
    name_pattern: str = r"^[A-Za-z0-9_-]+$"
    max_name_length: int = 255
    activation_seconds: float = 1.0
    deleted_retention_seconds: float = 0.0
    not_found_status: int = 404
    validation_status: int = 400
    duplicate_name_status: int = 409
    duplicate_name_code: int = 1003
    store_not_empty_code: int = 1003
    quota_exceeded_status: int = 400
    quota_exceeded_code: int = 1003
    scopes_filter: str = "all"

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _FLOATS:
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise ValueError(f"secrets_store.{item.name} must be a number of seconds")
                if value < 0:
                    raise ValueError(f"secrets_store.{item.name} must not be negative")
            elif item.type in ("bool", bool):
                if not isinstance(value, bool):
                    raise ValueError(f"secrets_store.{item.name} must be true or false")
            elif item.type in ("str", str):
                if not isinstance(value, str) or not value:
                    raise ValueError(f"secrets_store.{item.name} must be a non-empty string")
            elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"secrets_store.{item.name} must be a non-negative integer")
        if self.scopes_filter not in SCOPES_FILTERS:
            raise ValueError(f"secrets_store.scopes_filter must be one of {SCOPES_FILTERS}")
        if self.default_per_page < 1 or self.max_per_page < 1:
            raise ValueError("secrets_store page sizes must be positive")
        re.compile(self.name_pattern)

    def updated(self, changes: dict[str, Any]) -> SecretsStoreConfig:
        """A copy with ``changes`` applied; unknown names or bad values raise ``ValueError``."""
        unknown = set(changes) - {item.name for item in fields(self)}
        if unknown:
            raise ValueError(f"unknown secrets_store config fields: {sorted(unknown)}")
        return replace(self, **changes)
