"""Secrets Store state: an account's stores, their secrets (values write-only) and the write rules.

Shapes and rules, with where each comes from:

- A store ``{id, account_id, name, created, modified}`` (SDK 5.9 ``StoreCreateResponse`` /
  ``StoreListResponse``; wrangler ``secrets-store/client.ts`` ``Store``). A secret ``{id, store_id,
  name, comment, scopes, status, created, modified}`` (SDK 5.9 ``SecretListResponse``; wrangler
  ``Secret``), ``status`` one of ``pending``/``active``/``deleted``; ids are 32 hex digits and
  timestamps look like ``2023-09-21T18:56:32.624632Z`` (API reference examples). No answer ever
  holds a value ("write only", SDK 5.9 ``SecretEditParams.value``).
- One store per account: a second create is 400 / 1003 ``maximum_stores_exceeded`` (the live
  answer quoted in cloudflare/workers-sdk#10052 and alchemy-run/alchemy-async#377). A store with
  secrets is deleted only with ``force=true``, else 409 ``store_not_empty`` (SDK 5.9
  ``stores.delete`` docstring; the code is a setting).
- Values: at most 65,536 bytes (API reference, SDK 5.9), else 1001 ``secret_value_too_long`` (the
  live answer quoted in cloudflare/workers-sdk#9707). Names: ``invalid_secret_name`` for characters
  outside the rule (Infisical's ``cloudflare-secrets-store-sync-schemas.ts`` reports the API
  refusing ``.`` and ``%``), 1001 ``secret_name_empty``. Scopes: 1001 ``secret_scopes_empty`` /
  ``secret_scope_invalid`` (workers, ai_gateway, dex, access, containers, websearch: SDK 5.9).
- Unknown ids: 1001 ``store_not_found`` / ``secret_not_found``; a taken name: 1003
  ``secret_name_already_exists``. These codes and messages are the error matchers of
  alchemy-run/distilled ``packages/cloudflare/src/services/secrets-store.ts`` (third party); their
  HTTP statuses are UNVERIFIED settings (``SecretsStoreConfig``).
- The account quota (100 secrets, ``GET /quota`` ``{"secrets": {"quota", "usage"}}``): a create past
  it is refused whole; nothing is created (code, status and message UNVERIFIED settings).
- A create or a value change answers ``pending``; the secret turns ``active`` after
  ``activation_seconds`` on the emulator clock (UNVERIFIED). A deleted secret may stay listed as
  ``deleted`` for ``deleted_retention_seconds`` (UNVERIFIED; 0 by default).

Every method takes the emulator's one lock. ``record`` and ``value_of`` are for the admin API and
other devstack parts only.
"""

from __future__ import annotations

import secrets as random_ids
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from syncd.devstack.cloudflare.envelope import ApiError
from syncd.devstack.cloudflare.secrets_store_config import SecretsStoreConfig
from syncd.devstack.cloudflare.secrets_store_input import (
    VALIDATION,
    check_comment,
    check_name,
    check_scopes,
    check_value,
    invalid,
    json_object,
    new_item,
)
from syncd.devstack.httpkit import Clock

MAXIMUM_STORES_EXCEEDED = 1003
API_ACTOR = "api"
HAND_EDIT_ACTOR = "someone.else@example.com"


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class StoreSecret:
    id: str
    store_id: str
    name: str
    value: str
    scopes: list[str]
    comment: str
    created: float
    modified: float
    active_at: float
    modified_by: str = API_ACTOR
    deleted_at: float | None = None

    def status(self, now: float) -> str:
        if self.deleted_at is not None:
            return "deleted"
        return "pending" if now < self.active_at else "active"

    def view(self, now: float) -> dict[str, Any]:
        """The wire shape: metadata only, never the value."""
        return {
            "id": self.id,
            "store_id": self.store_id,
            "name": self.name,
            "comment": self.comment,
            "scopes": list(self.scopes),
            "status": self.status(now),
            "created": iso_time(self.created),
            "modified": iso_time(self.modified),
        }


@dataclass
class Store:
    id: str
    account_id: str
    name: str
    created: float
    modified: float
    secrets: dict[str, StoreSecret] = field(default_factory=dict)  # by id, tombstones included

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "name": self.name,
            "created": iso_time(self.created),
            "modified": iso_time(self.modified),
        }

    def live(self) -> list[StoreSecret]:
        return [secret for secret in self.secrets.values() if secret.deleted_at is None]


class SecretsStoreState:
    """Every account's stores. ``config`` is read at each call, so run-time changes apply at once."""

    def __init__(self, lock: threading.RLock, clock: Clock, config: Callable[[], SecretsStoreConfig]) -> None:
        self.lock = lock
        self.clock = clock
        self._config = config
        self._stores: dict[str, dict[str, Store]] = {}

    @property
    def config(self) -> SecretsStoreConfig:
        return self._config()

    # -- errors -----------------------------------------------------------------------------

    def _taken(self) -> ApiError:
        config = self.config
        return ApiError(config.duplicate_name_status, config.duplicate_name_code, "secret_name_already_exists")

    # -- stores -----------------------------------------------------------------------------

    def stores(self, account_id: str) -> list[Store]:
        with self.lock:
            return list(self._stores.get(account_id, {}).values())

    def store(self, account_id: str, store_id: str) -> Store:
        with self.lock:
            found = self._stores.get(account_id, {}).get(store_id)
            if found is None:
                raise ApiError(self.config.not_found_status, VALIDATION, "store_not_found")
            self._purge(found)
            return found

    def create_store(self, account_id: str, body: Any) -> Store:
        name = json_object(body).get("name")
        if not isinstance(name, str) or not name.strip():
            raise invalid(self.config, "invalid_json_body")
        with self.lock:
            stores = self._stores.setdefault(account_id, {})
            if len(stores) >= self.config.max_stores:
                raise ApiError(400, MAXIMUM_STORES_EXCEEDED, "maximum_stores_exceeded")
            now = self.clock.now()
            store = Store(random_ids.token_hex(16), account_id, name, now, now)
            stores[store.id] = store
            return store

    def delete_store(self, account_id: str, store_id: str, *, force: bool) -> None:
        with self.lock:
            store = self.store(account_id, store_id)
            if store.live() and not force:
                raise ApiError(409, self.config.store_not_empty_code, "store_not_empty")
            del self._stores[account_id][store_id]

    def quota(self, account_id: str) -> dict[str, Any]:
        with self.lock:
            return {"secrets": {"quota": self.config.secret_quota, "usage": self._usage(account_id)}}

    def _usage(self, account_id: str) -> int:
        return sum(len(store.live()) for store in self._stores.get(account_id, {}).values())

    def _purge(self, store: Store) -> None:
        """Forget deleted secrets once their retention has passed."""
        horizon = self.clock.now() - self.config.deleted_retention_seconds
        for secret_id in [s.id for s in store.secrets.values() if s.deleted_at is not None and s.deleted_at <= horizon]:
            del store.secrets[secret_id]

    # -- secrets ----------------------------------------------------------------------------

    def secret(self, account_id: str, store_id: str, secret_id: str) -> StoreSecret:
        """A live secret; a deleted one is ``secret_not_found`` like one that never was."""
        with self.lock:
            found = self.store(account_id, store_id).secrets.get(secret_id)
            if found is None or found.deleted_at is not None:
                raise ApiError(self.config.not_found_status, VALIDATION, "secret_not_found")
            return found

    def create_secrets(self, account_id: str, store_id: str, body: Any) -> list[StoreSecret]:
        """All of ``body`` (a JSON array) or nothing: every item is checked before any is stored."""
        if not isinstance(body, list) or not body:
            raise invalid(self.config, "invalid_json_body")
        with self.lock:
            store = self.store(account_id, store_id)
            items = [new_item(self.config, item) for item in body]
            taken = {secret.name for secret in store.live()}
            for item in items:
                if item["name"] in taken:
                    raise self._taken()
                taken.add(item["name"])
            self._check_quota(account_id, len(items))
            return [self._add(store, **item) for item in items]

    def duplicate(self, account_id: str, store_id: str, secret_id: str, body: Any) -> StoreSecret:
        payload = json_object(body)
        with self.lock:
            source = self.secret(account_id, store_id, secret_id)
            store = self.store(account_id, store_id)
            name = check_name(self.config, payload.get("name"))
            scopes = check_scopes(self.config, payload.get("scopes"))
            comment = check_comment(self.config, payload.get("comment", ""))
            if any(secret.name == name for secret in store.live()):
                raise self._taken()
            self._check_quota(account_id, 1)
            return self._add(store, name=name, value=source.value, scopes=scopes, comment=comment)

    def update(self, account_id: str, store_id: str, secret_id: str, body: Any, actor: str = API_ACTOR) -> StoreSecret:
        """``PATCH``: ``value``, ``scopes`` and ``comment``, each optional; the name cannot change."""
        payload = json_object(body)
        changes = {key: payload[key] for key in ("value", "scopes", "comment") if key in payload}
        with self.lock:
            secret = self.secret(account_id, store_id, secret_id)
            if not changes or payload.get("name", secret.name) != secret.name:
                raise invalid(self.config, "invalid_json_body")
            value = check_value(self.config, changes["value"]) if "value" in changes else None
            scopes = check_scopes(self.config, changes["scopes"]) if "scopes" in changes else None
            comment = check_comment(self.config, changes["comment"]) if "comment" in changes else None
            now = self.clock.now()
            if value is not None:
                secret.value = value
                secret.active_at = now + self.config.activation_seconds
            if scopes is not None:
                secret.scopes = scopes
            if comment is not None:
                secret.comment = comment
            secret.modified = now
            secret.modified_by = actor
            return secret

    def delete(self, account_id: str, store_id: str, secret_id: str) -> StoreSecret:
        with self.lock:
            secret = self.secret(account_id, store_id, secret_id)
            secret.deleted_at = self.clock.now()
            self._purge(self.store(account_id, store_id))
            return secret

    # -- for the admin API and other devstack parts ------------------------------------------

    def record(self, account_id: str, store_id: str, secret_id: str) -> dict[str, Any]:
        """A secret's wire view plus its value and who last changed it (tests only)."""
        with self.lock:
            secret = self.secret(account_id, store_id, secret_id)
            return {**secret.view(self.clock.now()), "value": secret.value, "modified_by": secret.modified_by}

    def value_of(self, account_id: str, store_id: str, name: str) -> str | None:
        with self.lock:
            stores = self._stores.get(account_id, {})
            store = stores.get(store_id)
            if store is None:
                return None
            found = [secret.value for secret in store.live() if secret.name == name]
            return found[0] if found else None

    def _check_quota(self, account_id: str, adding: int) -> None:
        config = self.config
        if self._usage(account_id) + adding > config.secret_quota:
            raise ApiError(config.quota_exceeded_status, config.quota_exceeded_code, "maximum_secrets_exceeded")

    def _add(self, store: Store, *, name: str, value: str, scopes: list[str], comment: str) -> StoreSecret:
        now = self.clock.now()
        secret = StoreSecret(
            id=random_ids.token_hex(16),
            store_id=store.id,
            name=name,
            value=value,
            scopes=scopes,
            comment=comment,
            created=now,
            modified=now,
            active_at=now + self.config.activation_seconds,
        )
        store.secrets[secret.id] = secret
        return secret
