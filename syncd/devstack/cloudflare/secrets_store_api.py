"""The real Secrets Store routes, under ``/client/v4/accounts/{account_id}/secrets_store``.

Paths, verbs and bodies as the official SDK 5.9 sends them (``resources/secrets_store/``) and
wrangler's ``packages/wrangler/src/secrets-store/client.ts`` (cloudflare/workers-sdk f830836):

- ``GET /stores?page&per_page&direction&order`` (order: name, created, modified), ``POST /stores``
  ``{"name"}`` -> the store, ``GET /stores/{id}``, ``DELETE /stores/{id}[?force=true]`` -> ``null``.
- ``GET /stores/{id}/secrets?page&per_page&direction&order&search&scopes`` (order: name, comment,
  created, modified, status; default ``created`` ``desc`` per the API reference; ``search`` matches
  name or comment substrings, case-insensitively (UNVERIFIED); ``scopes`` repeated as the SDK
  sends it (``array_format="repeat"``) or comma-separated).
- ``POST /stores/{id}/secrets`` with a JSON array ``[{"name", "value", "scopes", "comment"?}]`` -> a
  list (SDK ``SyncSinglePage``); ``GET|PATCH|DELETE /stores/{id}/secrets/{secret_id}`` (PATCH
  ``{"value"?, "scopes"?, "comment"?}``; DELETE answers the secret with status ``deleted``, as
  wrangler's ``mock-secrets-store.ts`` does); ``POST .../secrets/{secret_id}/duplicate``
  ``{"name", "scopes", "comment"?}``.
- ``GET /quota`` -> ``{"secrets": {"quota", "usage"}}``.

Listings page with ``result_info`` ``{page, per_page, count, total_count}`` (``total_pages`` only
with ``SecretsStoreConfig.total_pages``); a page past the end is empty, which is where the SDK's
auto-pagination (``SyncV4PagePaginationArray``: next page until an empty one) stops. A body that is
not JSON, or not the expected shape, is 1001 ``invalid_json_body`` (alchemy-run/distilled's matcher);
a bad ``page``/``per_page``/``order``/``direction`` is 1001 ``invalid_query_parameter`` (UNVERIFIED).

Every route goes through ``CloudflareApi._guarded`` (credentials, the shared rate limiter, the
account check, the ``Ratelimit`` headers; GET needs read, the rest write) and fault injection
(``httpkit``). Writes sleep the emulator's write latency model first (``edits``), as script writes do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from syncd.devstack.cloudflare.envelope import ApiError, envelope_response, success
from syncd.devstack.cloudflare.secrets_store import SecretsStoreState, StoreSecret
from syncd.devstack.cloudflare.secrets_store_input import VALIDATION
from syncd.devstack.cloudflare.versions import Author
from syncd.devstack.httpkit import Request, Response, Router

if TYPE_CHECKING:
    from syncd.devstack.cloudflare.api import CloudflareApi

BASE = r"/client/v4/accounts/(?P<account>[0-9a-f]{32})/secrets_store"
STORE = BASE + r"/stores/(?P<store>[^/]+)"
SECRET = STORE + r"/secrets/(?P<secret>[^/]+)"
SECRET_ORDERS = ("name", "comment", "created", "modified", "status")
STORE_ORDERS = ("name", "created", "modified")


def _bad_query() -> ApiError:
    return ApiError(400, VALIDATION, "invalid_query_parameter")


def _integer(request: Request, name: str) -> int | None:
    raw = request.query_value(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise _bad_query() from None
    if value < 0:
        raise _bad_query()
    return value


def _choice(request: Request, name: str, allowed: Sequence[str], default: str) -> str:
    value = request.query_value(name) or default
    if value not in allowed:
        raise _bad_query()
    return value


class SecretsStoreRoutes:
    def __init__(self, api: CloudflareApi) -> None:
        self.api = api

    @property
    def state(self) -> SecretsStoreState:
        return self.api.emulator.secrets_store

    def _now(self) -> float:
        return self.api.emulator.state.clock.now()

    def _body(self, request: Request) -> Any:
        try:
            return json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(self.state.config.validation_status, VALIDATION, "invalid_json_body") from None

    def _write_latency(self) -> None:
        latency = self.api.emulator.write_latency
        latency.sleep(latency.draw())

    def _paged(self, request: Request, rows: list[dict[str, Any]], orders: Sequence[str]) -> Response:
        config = self.state.config
        order = _choice(request, "order", orders, "created")
        descending = _choice(request, "direction", ("asc", "desc"), "desc") == "desc"
        page = max(_integer(request, "page") or 1, 1)
        per_page = min(_integer(request, "per_page") or config.default_per_page, config.max_per_page)
        rows.sort(key=lambda row: (str(row.get(order) or ""), row["id"]), reverse=descending)
        chunk = rows[(page - 1) * per_page : page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(rows)}
        if config.total_pages:
            info["total_pages"] = max(math.ceil(len(rows) / per_page), 1)
        body = {"success": True, "errors": [], "messages": [], "result": chunk, "result_info": info}
        return envelope_response(200, body)

    def _views(self, secrets: list[StoreSecret]) -> list[dict[str, Any]]:
        now = self._now()
        return [secret.view(now) for secret in secrets]

    # -- stores -----------------------------------------------------------------------------

    def list_stores(self, request: Request, _: Author) -> Response:
        rows = [store.view() for store in self.state.stores(request.params["account"])]
        return self._paged(request, rows, STORE_ORDERS)

    def get_store(self, request: Request, _: Author) -> Response:
        return success(self.state.store(request.params["account"], request.params["store"]).view())

    def create_store(self, request: Request, _: Author) -> Response:
        body = self._body(request)
        self._write_latency()
        return success(self.state.create_store(request.params["account"], body).view())

    def delete_store(self, request: Request, _: Author) -> Response:
        self._write_latency()
        force = request.query_value("force") == "true"
        self.state.delete_store(request.params["account"], request.params["store"], force=force)
        return success(None)

    def quota(self, request: Request, _: Author) -> Response:
        return success(self.state.quota(request.params["account"]))

    # -- secrets ----------------------------------------------------------------------------

    def list_secrets(self, request: Request, _: Author) -> Response:
        store = self.state.store(request.params["account"], request.params["store"])
        with self.state.lock:
            rows = self._views(list(store.secrets.values()))
        search = (request.query_value("search") or "").lower()
        if search:
            rows = [row for row in rows if search in row["name"].lower() or search in row["comment"].lower()]
        wanted = {scope for raw in request.query.get("scopes", []) for scope in raw.split(",") if scope}
        if wanted:
            rows = [row for row in rows if self._scopes_match(wanted, set(row["scopes"]))]
        return self._paged(request, rows, SECRET_ORDERS)

    def _scopes_match(self, wanted: set[str], held: set[str]) -> bool:
        return wanted <= held if self.state.config.scopes_filter == "all" else bool(wanted & held)

    def get_secret(self, request: Request, _: Author) -> Response:
        p = request.params
        return success(self.state.secret(p["account"], p["store"], p["secret"]).view(self._now()))

    def create_secrets(self, request: Request, _: Author) -> Response:
        body = self._body(request)
        self._write_latency()
        created = self._views(self.state.create_secrets(request.params["account"], request.params["store"], body))
        info = {"page": 1, "per_page": len(created), "count": len(created), "total_count": len(created)}
        return envelope_response(
            200, {"success": True, "errors": [], "messages": [], "result": created, "result_info": info}
        )

    def edit_secret(self, request: Request, _: Author) -> Response:
        p = request.params
        body = self._body(request)
        self._write_latency()
        return success(self.state.update(p["account"], p["store"], p["secret"], body).view(self._now()))

    def delete_secret(self, request: Request, _: Author) -> Response:
        p = request.params
        self._write_latency()
        return success(self.state.delete(p["account"], p["store"], p["secret"]).view(self._now()))

    def duplicate_secret(self, request: Request, _: Author) -> Response:
        p = request.params
        body = self._body(request)
        self._write_latency()
        return success(self.state.duplicate(p["account"], p["store"], p["secret"], body).view(self._now()))


def register_secrets_store_routes(router: Router, api: CloudflareApi) -> None:
    routes = SecretsStoreRoutes(api)
    guarded: Callable[[str, Callable[[Request, Author], Response]], Callable[[Request], Response]] = api._guarded
    router.add(["GET"], BASE + "/quota", guarded("read", routes.quota))
    router.add(["GET"], BASE + "/stores", guarded("read", routes.list_stores))
    router.add(["POST"], BASE + "/stores", guarded("write", routes.create_store))
    router.add(["GET"], STORE, guarded("read", routes.get_store))
    router.add(["DELETE"], STORE, guarded("write", routes.delete_store))
    router.add(["GET"], STORE + "/secrets", guarded("read", routes.list_secrets))
    router.add(["POST"], STORE + "/secrets", guarded("write", routes.create_secrets))
    router.add(["GET"], SECRET, guarded("read", routes.get_secret))
    router.add(["PATCH"], SECRET, guarded("write", routes.edit_secret))
    router.add(["DELETE"], SECRET, guarded("write", routes.delete_secret))
    router.add(["POST"], SECRET + "/duplicate", guarded("write", routes.duplicate_secret))
