"""Behaviour switches of the Cloudflare emulator, for what the public sources leave open.

Every field can be given to ``CloudflareEmulator(config=...)`` and changed at run time with
``POST /__devstack/config`` (a JSON object with any of these fields).

- ``max_variables`` (128): secrets plus plain-text vars per Worker (Paid plan; 64 on Free).
- ``max_value_bytes`` (5120): the 5 KB limit per value (code 10054).
- ``max_bulk_secrets`` (100): names per ``secrets-bulk`` call.
- ``binding_name_policy`` ("identifier"): "identifier" accepts ASCII JavaScript identifiers
  (``^[A-Za-z_$][A-Za-z0-9_$]*$``); "any" accepts any non-empty name up to 255 characters.
  How strictly the real API checks is UNVERIFIED (names with ``@`` have existed).
- ``invalid_token_status`` (403): the status of 9109 for an unknown bearer token (sometimes 401).
- ``missing_credentials_status`` (400): the status of 9106 when no credentials are sent.
- ``unknown_route_status`` (400): the status of 7003/7000 (the real API answers 400 in the
  samples found; one probe reports 404 for an unknown object identifier).
- ``method_not_allowed_status`` (405): the status of 7001 (UNVERIFIED).
- ``undeployed_status`` (400): the status of 10214/10215 (UNVERIFIED; third-party mocks use 400).
- ``concurrent_edit_status`` (429), ``concurrent_edit_code`` (10013), ``concurrent_edit_message``:
  the answer to a write on a script that has another write in flight. Cloudflare answers 429 for
  concurrent edits of one script; the code and message are UNVERIFIED.
- ``versions_per_page`` (10) / ``max_per_page`` (100): default and largest ``per_page`` of the
  versions listings (UNVERIFIED).
- ``secrets_store``: the Secrets Store API's switches (``secrets_store_config.SecretsStoreConfig``);
  ``POST /__devstack/config {"secrets_store": {...}}`` changes some of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from syncd.devstack.cloudflare.secrets_store_config import SecretsStoreConfig

BINDING_NAME_POLICIES = ("identifier", "any")


@dataclass(frozen=True)
class EmulatorConfig:
    max_variables: int = 128
    max_value_bytes: int = 5 * 1024
    max_bulk_secrets: int = 100
    binding_name_policy: str = "identifier"
    invalid_token_status: int = 403
    missing_credentials_status: int = 400
    unknown_route_status: int = 400
    method_not_allowed_status: int = 405
    undeployed_status: int = 400
    concurrent_edit_status: int = 429
    concurrent_edit_code: int = 10013
    concurrent_edit_message: str = "Too many requests modifying the script. Please wait and try again."
    versions_per_page: int = 10
    max_per_page: int = 100
    secrets_store: SecretsStoreConfig = field(default_factory=SecretsStoreConfig)

    def __post_init__(self) -> None:
        if self.binding_name_policy not in BINDING_NAME_POLICIES:
            raise ValueError(f"binding_name_policy must be one of {BINDING_NAME_POLICIES}")
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "secrets_store":
                if not isinstance(value, SecretsStoreConfig):
                    raise ValueError("secrets_store must be a SecretsStoreConfig")
            elif item.type in ("str", str):
                if not isinstance(value, str) or not value:
                    raise ValueError(f"{item.name} must be a non-empty string")
            elif not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{item.name} must be a positive integer")

    def updated(self, changes: dict[str, Any]) -> EmulatorConfig:
        """A copy with ``changes`` applied; unknown names or bad values raise ``ValueError``."""
        known = {item.name for item in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        if isinstance(changes.get("secrets_store"), dict):
            changes = {**changes, "secrets_store": self.secrets_store.updated(changes["secrets_store"])}
        return replace(self, **changes)
