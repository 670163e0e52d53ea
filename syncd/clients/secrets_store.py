"""Cloudflare Secrets Store client: find a store, list its secrets, create, update, delete, quota.

Every call goes through ``CloudflareClient.request`` (the one pacer per credential, retries with
backoff, the cycle's deadline, the leader's write gate, typed errors, the request observer), so a
store call costs what a script call costs and counts against the same rate budget.

Routes (all under ``/accounts/{account_id}/secrets_store``; the official SDK 5.9
``resources/secrets_store/`` and wrangler ``packages/wrangler/src/secrets-store/client.ts``; see
``/work/shared/reference/cloudflare-secrets-store.md``):

- ``find_store``: ``GET /stores?page&per_page`` until a short page; a store matches by id, else by name.
- ``list_secrets``: ``GET /stores/{id}/secrets?page&per_page&order=created&direction=asc`` until a
  short or empty page. Oldest first, so a secret created meanwhile lands on a later page instead
  of pushing a listed one onto the next page twice; rows are also kept once per id. Rows with status
  ``deleted`` are left out. There is no lookup by name: the caller maps names to ids from this list.
- ``create_secrets``: one ``POST /stores/{id}/secrets`` with a JSON array
  ``[{"name", "value", "scopes", "comment"}]``; the answer lists the new secrets.
- ``update_secret``: ``PATCH /stores/{id}/secrets/{secret_id}`` with only the fields given
  (``value``, ``scopes``, ``comment``; the name cannot change).
- ``delete_secret``: ``DELETE /stores/{id}/secrets/{secret_id}``; one already gone counts as deleted.
- ``quota``: ``GET /quota`` -> ``{"secrets": {"quota", "usage"}}`` (account-wide).

``per_page`` is 50 by default: the documented maximum is 100 but Infisical reports a cap of 50, and
what the API does above its cap is UNVERIFIED. Paging follows the envelope's ``result_info``: its
``total_pages``, else ``total_count`` against the ``per_page`` it reports (so a server that caps the
size below what was asked, and says so, is paged to the end); an empty page always ends. Without
``result_info`` a page shorter than asked ends the listing, so keep ``per_page`` at or under 50.
Values: a ``SecretValue`` is revealed only into the request body; a value over 65,536 bytes raises
``ValueRejected`` before anything is sent (wrangler checks the same because the API once accepted
oversized values that then failed at Worker deploy). ``store_not_found`` / ``secret_not_found``
(1001) or a 404 raise ``SecretsStoreNotFound``; everything else is ``CloudflareClient``'s typed errors.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from syncd.clients.cloudflare import CloudflareClient
from syncd.errors import CloudflareError, CloudflareNotFound, SecretsStoreNotFound, ValueRejected
from syncd.model import SecretValue
from syncd.model_store import MAX_STORE_VALUE_BYTES, NewStoreSecret, SecretsStore, StoreQuota, StoreSecret

PER_PAGE = 50
MAX_PAGES = 100
NOT_FOUND_MESSAGES = frozenset({"store_not_found", "secret_not_found"})
STORE_ID = re.compile(r"^[0-9a-f]{32}$")


def _q(part: str) -> str:
    return quote(part, safe="")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _last_page(count: int, page: int, asked: int, info: Mapping[str, Any] | None) -> bool:
    """Whether a page of ``count`` rows ends the listing. ``result_info`` decides where it can: its
    ``total_pages``, else ``total_count`` against the page size it reports (a server that caps
    ``per_page`` below what was asked says so there); without it, a page shorter than asked."""
    if count == 0:
        return True
    size = asked
    if info is not None:
        total_pages = _count(info.get("total_pages"))
        if total_pages is not None:
            return page >= total_pages
        size = _count(info.get("per_page")) or asked
        total = _count(info.get("total_count"))
        if total is not None:
            return page * size >= total
    return count < size


def check_value_size(name: str, value: SecretValue) -> None:
    """``ValueRejected`` for a value the store cannot hold (the message gives sizes, never the value)."""
    size = len(value.reveal().encode())
    if size > MAX_STORE_VALUE_BYTES:
        raise ValueRejected(name, f"{size} bytes, over the Secrets Store's limit of {MAX_STORE_VALUE_BYTES}")


def store_from(item: Mapping[str, Any]) -> SecretsStore:
    return SecretsStore(str(item["id"]), str(item["name"]), _text(item.get("created")), _text(item.get("modified")))


def secret_from(item: Mapping[str, Any]) -> StoreSecret:
    scopes = item.get("scopes")
    return StoreSecret(
        id=str(item["id"]),
        store_id=_text(item.get("store_id")),
        name=str(item["name"]),
        comment=_text(item.get("comment")),
        scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else (),
        status=_text(item.get("status")),
        created=_text(item.get("created")),
        modified=_text(item.get("modified")),
    )


class SecretsStoreClient:
    """Secrets Store calls on top of one ``CloudflareClient`` (its transport, pacer and auth)."""

    def __init__(self, cloudflare: CloudflareClient, *, per_page: int = PER_PAGE, max_pages: int = MAX_PAGES) -> None:
        if per_page < 1 or max_pages < 1:
            raise ValueError("per_page and max_pages must be positive")
        self._cf = cloudflare
        self._per_page = per_page
        self._max_pages = max_pages

    def __repr__(self) -> str:
        return f"SecretsStoreClient({self._cf!r})"

    # -- stores -----------------------------------------------------------------------------

    def list_stores(self, account_id: str) -> list[SecretsStore]:
        rows = self._all_pages(f"{self._base(account_id)}/stores", "secrets_store_list_stores", {})
        return [store_from(row) for row in rows]

    def find_store(self, account_id: str, name_or_id: str) -> SecretsStore:
        """The store with that id, else the one with that name; ``SecretsStoreNotFound`` if none."""
        stores = self.list_stores(account_id)
        by_id = [store for store in stores if store.id == name_or_id]
        by_name = [store for store in stores if store.name == name_or_id]
        found = by_id or by_name
        if len(found) == 1:
            return found[0]
        what = "id" if STORE_ID.match(name_or_id) else "name"
        path = f"{self._base(account_id)}/stores"
        if not found:
            raise SecretsStoreNotFound(f"Cloudflare GET {path}: no Secrets Store with the {what} {name_or_id!r}")
        raise CloudflareError(f"Cloudflare GET {path}: {len(found)} Secrets Stores named {name_or_id!r}; give an id")

    # -- secrets ----------------------------------------------------------------------------

    def list_secrets(self, account_id: str, store_id: str) -> list[StoreSecret]:
        """Every live secret of the store (metadata), oldest first."""
        query = {"order": "created", "direction": "asc"}
        rows = self._all_pages(self._secrets(account_id, store_id), "secrets_store_list_secrets", query)
        secrets = [secret_from(row) for row in rows]
        return [secret for secret in secrets if not secret.deleted]

    def create_secrets(self, account_id: str, store_id: str, secrets: Sequence[NewStoreSecret]) -> list[StoreSecret]:
        """One ``POST`` for all of ``secrets``; nothing is sent if any value is too large."""
        if not secrets:
            return []
        for secret in secrets:
            check_value_size(secret.name, secret.value)
        body = [
            {"name": s.name, "value": s.value.reveal(), "scopes": list(s.scopes), "comment": s.comment} for s in secrets
        ]
        path = self._secrets(account_id, store_id)
        result = self._request("POST", path, "secrets_store_create", json=body)
        if not isinstance(result, list):
            raise CloudflareError(f"Cloudflare POST {path}: result is not a list", status=200)
        return [secret_from(item) for item in result if isinstance(item, dict) and "id" in item and "name" in item]

    def update_secret(
        self,
        account_id: str,
        store_id: str,
        secret_id: str,
        *,
        value: SecretValue | None = None,
        scopes: Sequence[str] | None = None,
        comment: str | None = None,
    ) -> StoreSecret:
        """``PATCH`` the fields given (at least one)."""
        body: dict[str, Any] = {}
        if value is not None:
            check_value_size(secret_id, value)
            body["value"] = value.reveal()
        if scopes is not None:
            body["scopes"] = list(scopes)
        if comment is not None:
            body["comment"] = comment
        if not body:
            raise ValueError("update_secret: give a value, scopes or a comment")
        path = f"{self._secrets(account_id, store_id)}/{_q(secret_id)}"
        result = self._request("PATCH", path, "secrets_store_update", json=body)
        if not isinstance(result, dict) or "id" not in result or "name" not in result:
            raise CloudflareError(f"Cloudflare PATCH {path}: result is not a secret", status=200)
        return secret_from(result)

    def delete_secret(self, account_id: str, store_id: str, secret_id: str) -> None:
        path = f"{self._secrets(account_id, store_id)}/{_q(secret_id)}"
        try:
            self._request("DELETE", path, "secrets_store_delete")
        except SecretsStoreNotFound as exc:
            if exc.api_message != "secret_not_found":
                raise

    def quota(self, account_id: str) -> StoreQuota:
        path = f"{self._base(account_id)}/quota"
        result = self._request("GET", path, "secrets_store_quota")
        counts = result.get("secrets") if isinstance(result, dict) else None
        if not isinstance(counts, dict) or not all(isinstance(counts.get(k), int | float) for k in ("quota", "usage")):
            raise CloudflareError(f"Cloudflare GET {path}: result has no secrets quota and usage", status=200)
        return StoreQuota(quota=int(counts["quota"]), usage=int(counts["usage"]))

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _base(account_id: str) -> str:
        return f"/accounts/{_q(account_id)}/secrets_store"

    def _secrets(self, account_id: str, store_id: str) -> str:
        return f"{self._base(account_id)}/stores/{_q(store_id)}/secrets"

    def _request(
        self, method: str, path: str, operation: str, *, json: Any = None, params: Mapping[str, str] | None = None
    ) -> Any:
        with self._typed_not_found():
            return self._cf.request(method, path, operation=operation, json=json, params=params)

    def _page(self, path: str, operation: str, params: Mapping[str, str]) -> tuple[Any, dict[str, Any] | None]:
        with self._typed_not_found():
            return self._cf.request_page(path, operation=operation, params=params)

    @contextlib.contextmanager
    def _typed_not_found(self) -> Iterator[None]:
        try:
            yield
        except CloudflareError as exc:
            if exc.api_message in NOT_FOUND_MESSAGES or isinstance(exc, CloudflareNotFound):
                raise SecretsStoreNotFound(
                    str(exc), status=exc.status, code=exc.code, api_message=exc.api_message
                ) from exc
            raise

    def _all_pages(self, path: str, operation: str, query: Mapping[str, str]) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for page in range(1, self._max_pages + 1):
            params = {**query, "page": str(page), "per_page": str(self._per_page)}
            result, info = self._page(path, operation, params)
            if result is None:
                result = []
            if not isinstance(result, list):
                raise CloudflareError(f"Cloudflare GET {path}: result is not a list", status=200)
            items = [item for item in result if isinstance(item, dict) and "id" in item and "name" in item]
            for item in items:
                rows.setdefault(str(item["id"]), item)
            if _last_page(len(result), page, self._per_page, info):
                return list(rows.values())
        raise CloudflareError(f"Cloudflare GET {path}: more than {self._max_pages} pages of {self._per_page}")
