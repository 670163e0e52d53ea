"""Admin routes for the Secrets Store (``/__devstack``, no auth, not rate limited, plain JSON).

- ``POST /__devstack/accounts/{id}/secrets_store/stores`` ``{"name"?: "default_secrets_store"}``:
  create a store (the account's limit applies) -> 201 the store.
- ``GET  .../secrets_store/stores/{store}/secrets``: ``{"secrets": [...]}``, each the wire view plus
  ``value`` and ``modified_by``, deleted ones left out (VALUES INCLUDED: tests only).
- ``GET  .../secrets_store/stores/{store}/secrets/{secret_id}``: one such record.
- ``POST .../secrets_store/stores/{store}/secrets/{secret_id}/hand-edit`` ``{"value"?, "comment"?,
  "scopes"?, "author_email"?: "someone.else@example.com"}``: an edit made by someone else (the
  dashboard, wrangler): what a ``PATCH`` changes, ``modified`` included -> the wire view plus
  ``modified_by``.

Bad input is 400 ``{"error"}``; an unknown store or secret is 404 ``{"error"}`` (``admin._admin``;
with ``SecretsStoreConfig.not_found_status`` other than 404 it is 400).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syncd.devstack.cloudflare.admin import ACCOUNT, _admin
from syncd.devstack.cloudflare.secrets_store import HAND_EDIT_ACTOR
from syncd.devstack.httpkit import Request, Response, Router

if TYPE_CHECKING:
    from syncd.devstack.cloudflare.server import CloudflareEmulator

STORES = ACCOUNT + "/secrets_store/stores"
SECRETS = STORES + r"/(?P<store>[^/]+)/secrets"
SECRET = SECRETS + r"/(?P<secret>[^/]+)"


def register_secrets_store_admin_routes(router: Router, emulator: CloudflareEmulator) -> None:
    state = emulator.secrets_store

    def create_store(request: Request, body: dict[str, Any]) -> Response:
        store = state.create_store(request.params["account"], {"name": body.get("name", "default_secrets_store")})
        return Response.json(201, store.view())

    def all_secrets(request: Request, _: dict[str, Any]) -> Response:
        p = request.params
        with state.lock:
            ids = [secret.id for secret in state.store(p["account"], p["store"]).live()]
            return Response.json(200, {"secrets": [state.record(p["account"], p["store"], i) for i in ids]})

    def one_secret(request: Request, _: dict[str, Any]) -> Response:
        p = request.params
        return Response.json(200, state.record(p["account"], p["store"], p["secret"]))

    def hand_edit(request: Request, body: dict[str, Any]) -> Response:
        p = request.params
        actor = str(body.pop("author_email", HAND_EDIT_ACTOR))
        secret = state.update(p["account"], p["store"], p["secret"], body, actor=actor)
        with state.lock:
            return Response.json(200, {**secret.view(state.clock.now()), "modified_by": secret.modified_by})

    router.add(["POST"], STORES, _admin(create_store))
    router.add(["GET"], SECRETS, _admin(all_secrets))
    router.add(["GET"], SECRET, _admin(one_secret))
    router.add(["POST"], SECRET + "/hand-edit", _admin(hand_edit))
