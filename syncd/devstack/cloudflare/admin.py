"""The emulator's admin API under ``/__devstack`` (no auth, not rate limited, plain JSON).

- ``GET  /__devstack/accounts/{id}/workers/scripts/{script}`` and
  ``GET  /__devstack/accounts/{id}/workers/dispatch/namespaces/{ns}/scripts/{script}``:
  ``{"secrets": {NAME: full body, value included}, "versions": int}``.
- ``POST /__devstack/accounts`` ``{"account_id"?}``: a new account -> ``{"account_id"}``.
- ``POST /__devstack/accounts/{id}/workers/scripts`` ``{"name", "plain_text"?: {NAME: text}}``.
- ``POST /__devstack/accounts/{id}/workers/dispatch/namespaces`` ``{"name"}``.
- ``POST /__devstack/accounts/{id}/workers/dispatch/namespaces/{ns}/scripts`` ``{"name", "plain_text"?}``.
- ``POST .../scripts/{script}/undeployed`` ``{"undeployed": true|false}`` (both kinds of script).
- ``POST /__devstack/tokens`` ``{"token"?, "permission": "write"|"read", "account_id"?}`` -> ``{"token"}``.
- ``DELETE /__devstack/tokens/{token}``: revoke it -> ``{"revoked": true}``; 404 if unknown.
- ``POST /__devstack/global-keys`` ``{"email", "key"}``.
- ``POST /__devstack/ratelimit`` ``{"limit"?, "window"?, "block"?}`` (resets every bucket).
- ``GET|POST /__devstack/config``: the ``EmulatorConfig`` fields / change some of them.
Bad input is 400 ``{"error"}``; an unknown account, namespace or script is 404 ``{"error"}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from syncd.devstack.cloudflare.envelope import ApiError
from syncd.devstack.httpkit import ADMIN_PREFIX, Request, Response, Router

if TYPE_CHECKING:
    from syncd.devstack.cloudflare.server import CloudflareEmulator

ACCOUNT = ADMIN_PREFIX + r"/accounts/(?P<account>[^/]+)"
SCRIPTS_PLAIN = ACCOUNT + r"/workers/scripts"
NAMESPACES = ACCOUNT + r"/workers/dispatch/namespaces"
SCRIPTS_IN_NAMESPACE = NAMESPACES + r"/(?P<namespace>[^/]+)/scripts"

AdminHandler = Callable[[Request], Response]


def _object_body(request: Request) -> dict[str, Any]:
    payload = request.json()
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    return payload


def _admin(handler: Callable[[Request, dict[str, Any]], Response]) -> AdminHandler:
    def wrapped(request: Request) -> Response:
        try:
            return handler(request, _object_body(request))
        except ApiError as error:
            return Response.json(error.status if error.status == 404 else 400, {"error": error.message})
        except (ValueError, KeyError, TypeError) as exc:
            return Response.json(400, {"error": str(exc)})

    return wrapped


def _plain_text(body: dict[str, Any]) -> dict[str, str]:
    plain_text = body.get("plain_text") or {}
    if not isinstance(plain_text, dict) or not all(isinstance(v, str) for v in plain_text.values()):
        raise ValueError("plain_text must map names to strings")
    return {str(k): v for k, v in plain_text.items()}


def register_admin_routes(router: Router, emulator: CloudflareEmulator) -> None:
    store = emulator.store

    def script_state(request: Request, _: dict[str, Any]) -> Response:
        p = request.params
        script = store.script(p["account"], p["script"], p.get("namespace"))
        with store.lock:
            secrets = {name: dict(secret) for name, secret in script.secrets.items()}
            return Response.json(200, {"secrets": secrets, "versions": script.versions})

    def create_account(_: Request, body: dict[str, Any]) -> Response:
        return Response.json(201, {"account_id": emulator.create_account(body.get("account_id"))})

    def create_script(request: Request, body: dict[str, Any]) -> Response:
        p = request.params
        store.create_script(p["account"], str(body["name"]), _plain_text(body), p.get("namespace"))
        return Response.json(201, {"name": body["name"]})

    def create_namespace(request: Request, body: dict[str, Any]) -> Response:
        store.create_namespace(request.params["account"], str(body["name"]))
        return Response.json(201, {"name": body["name"]})

    def set_undeployed(request: Request, body: dict[str, Any]) -> Response:
        p = request.params
        undeployed = body.get("undeployed", True)
        if not isinstance(undeployed, bool):
            raise ValueError("undeployed must be true or false")
        store.set_undeployed(p["account"], p["script"], undeployed, p.get("namespace"))
        return Response.json(200, {"undeployed": undeployed})

    def create_token(_: Request, body: dict[str, Any]) -> Response:
        token = emulator.create_token(
            permission=str(body.get("permission", "write")), token=body.get("token"), account_id=body.get("account_id")
        )
        return Response.json(201, {"token": token})

    def revoke_token(request: Request, _: dict[str, Any]) -> Response:
        try:
            emulator.revoke_token(unquote(request.params["token"]))
        except KeyError:
            return Response.json(404, {"error": "no such token"})
        return Response.json(200, {"revoked": True})

    def add_global_key(_: Request, body: dict[str, Any]) -> Response:
        emulator.add_global_key(str(body["email"]), str(body["key"]))
        return Response.json(201, {"email": body["email"]})

    def set_rate_limit(_: Request, body: dict[str, Any]) -> Response:
        limiter = emulator.rate_limiter
        emulator.set_rate_limit(
            int(body.get("limit", limiter.limit)),
            float(body.get("window", limiter.window)),
            float(body.get("block", limiter.block)),
        )
        return Response.json(200, {"limit": limiter.limit, "window": limiter.window, "block": limiter.block})

    def get_config(_: Request, __: dict[str, Any]) -> Response:
        return Response.json(200, dataclasses.asdict(emulator.config))

    def change_config(_: Request, body: dict[str, Any]) -> Response:
        emulator.config = emulator.config.updated(body)
        return Response.json(200, dataclasses.asdict(emulator.config))

    router.add(["GET"], SCRIPTS_PLAIN + r"/(?P<script>[^/]+)", _admin(script_state))
    router.add(["GET"], SCRIPTS_IN_NAMESPACE + r"/(?P<script>[^/]+)", _admin(script_state))
    router.add(["POST"], ADMIN_PREFIX + "/accounts", _admin(create_account))
    router.add(["POST"], SCRIPTS_PLAIN, _admin(create_script))
    router.add(["POST"], SCRIPTS_IN_NAMESPACE, _admin(create_script))
    router.add(["POST"], NAMESPACES, _admin(create_namespace))
    router.add(["POST"], SCRIPTS_PLAIN + r"/(?P<script>[^/]+)/undeployed", _admin(set_undeployed))
    router.add(["POST"], SCRIPTS_IN_NAMESPACE + r"/(?P<script>[^/]+)/undeployed", _admin(set_undeployed))
    router.add(["POST"], ADMIN_PREFIX + "/tokens", _admin(create_token))
    router.add(["DELETE"], ADMIN_PREFIX + r"/tokens/(?P<token>[^/]+)", _admin(revoke_token))
    router.add(["POST"], ADMIN_PREFIX + "/global-keys", _admin(add_global_key))
    router.add(["POST"], ADMIN_PREFIX + "/ratelimit", _admin(set_rate_limit))
    router.add(["GET"], ADMIN_PREFIX + "/config", _admin(get_config))
    router.add(["POST"], ADMIN_PREFIX + "/config", _admin(change_config))
