"""The emulator's admin API under ``/__devstack`` (no auth, not rate limited, plain JSON).

- ``GET  /__devstack/accounts/{id}/workers/scripts/{script}`` and
  ``GET  /__devstack/accounts/{id}/workers/dispatch/namespaces/{ns}/scripts/{script}``:
  ``{"secrets": {NAME: full body, value included}, "versions": int}``.
- ``POST /__devstack/accounts`` ``{"account_id"?}``: a new account -> ``{"account_id"}``.
- ``POST /__devstack/accounts/{id}/workers/scripts`` ``{"name", "plain_text"?: {NAME: text}}``.
- ``POST /__devstack/accounts/{id}/workers/dispatch/namespaces`` ``{"name"}``.
- ``POST /__devstack/accounts/{id}/workers/dispatch/namespaces/{ns}/scripts`` ``{"name", "plain_text"?}``.
- ``POST .../scripts/{script}/undeployed`` ``{"undeployed": true|false}`` (both kinds of script):
  ``true`` uploads a code version (secrets kept) without deploying it, ``false`` deploys the latest
  version at 100 % (the real state, not a switch).
- ``POST .../scripts`` also takes ``"with_version": false``: a script without any version (10222).
- ``GET  .../scripts/{script}/versions``: every version oldest first, VALUES INCLUDED (tests only):
  ``{"versions": [{id, number, metadata, annotations, plain_text, secrets}], "deployment"}``.
- ``GET  .../scripts/{script}/versions/{id or number}``: one version with its values.
- ``POST .../scripts/{script}/versions`` ``{"deploy"?: false, "keep_secrets"?: true,
  "plain_text"?: {..}, "message"?, "author_email"?, "source"?: "wrangler"}``: upload a code version
  (``keep_secrets`` is wrangler's ``keep_bindings``; ``deploy: true`` is a code deploy that keeps secrets).
- ``POST .../scripts/{script}/deployments`` ``{"versions": [{"version": id or number,
  "percentage"}], "author_email"?, "source"?}``: deploy one version at 100 % or two split (a gradual
  deployment, a rollback).
- ``POST .../scripts/{script}/hand-edit`` ``{"set"?: {NAME: secret body}, "delete"?: [NAME],
  "author_email"?: "someone.else@example.com", "source"?: "dash", "deploy"?: true, "message"?}``:
  a secret edit made by someone else; deployed at 100 % unless ``deploy`` is false.
- ``GET|POST /__devstack/latency``: the write latency model ``{"kind", "a", "b", "seed"}`` / set it
  with ``{"spec": "uniform:0.5,1.5@7"}`` or ``{"kind": "fixed", "a": 1.0}`` (see ``edits``).
- ``GET /__devstack/edits``: ``{"in_flight", "concurrent_edit_429s", "writes"}``; ``DELETE`` zeroes the counts.
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

from syncd.devstack.cloudflare.auth import user_id_of
from syncd.devstack.cloudflare.edits import LatencySpec
from syncd.devstack.cloudflare.envelope import ApiError
from syncd.devstack.cloudflare.lifecycle import Target
from syncd.devstack.cloudflare.store import ADMIN_AUTHOR, HAND_EDITOR
from syncd.devstack.cloudflare.versions import Author
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


def _author(body: dict[str, Any], default: Author) -> Author:
    email = str(body.get("author_email", default.email))
    return Author(email, user_id_of(email), str(body.get("source", default.source)))


def _target(request: Request) -> Target:
    p = request.params
    return p["account"], p["script"], p.get("namespace")


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def register_admin_routes(router: Router, emulator: CloudflareEmulator) -> None:
    register_version_admin_routes(router, emulator)
    store = emulator.store

    def script_state(request: Request, _: dict[str, Any]) -> Response:
        p = request.params
        script = store.script(p["account"], p["script"], p.get("namespace"))
        with store.lock:
            secrets = {name: dict(secret) for name, secret in script.secrets.items()}
            deployment = script.deployment.view() if script.deployment is not None else None
            return Response.json(200, {"secrets": secrets, "versions": script.versions, "deployment": deployment})

    def create_account(_: Request, body: dict[str, Any]) -> Response:
        return Response.json(201, {"account_id": emulator.create_account(body.get("account_id"))})

    def create_script(request: Request, body: dict[str, Any]) -> Response:
        p = request.params
        with_version = _flag(body, "with_version", True)
        store.create_script(
            p["account"], str(body["name"]), _plain_text(body), p.get("namespace"), with_version=with_version
        )
        return Response.json(201, {"name": body["name"]})

    def create_namespace(request: Request, body: dict[str, Any]) -> Response:
        store.create_namespace(request.params["account"], str(body["name"]))
        return Response.json(201, {"name": body["name"]})

    def set_undeployed(request: Request, body: dict[str, Any]) -> Response:
        p = request.params
        undeployed = _flag(body, "undeployed", True)
        emulator.set_undeployed(p["script"], undeployed, p.get("namespace"), p["account"])
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


def register_version_admin_routes(router: Router, emulator: CloudflareEmulator) -> None:
    lifecycle = emulator.lifecycle

    def all_versions(request: Request, _: dict[str, Any]) -> Response:
        with emulator.store.lock:
            script = emulator.store.script(*_target(request))
            deployment = script.deployment.view() if script.deployment is not None else None
            versions = [version.admin_view() for version in script.history]
        return Response.json(200, {"versions": versions, "deployment": deployment})

    def one_version(request: Request, _: dict[str, Any]) -> Response:
        with emulator.store.lock:
            return Response.json(
                200, lifecycle.version(_target(request), request.params["version"], by_number=True).admin_view()
            )

    def upload_code(request: Request, body: dict[str, Any]) -> Response:
        plain_text = _plain_text(body) if "plain_text" in body else None
        version = lifecycle.upload_code(
            _target(request),
            _author(body, ADMIN_AUTHOR),
            keep_secrets=_flag(body, "keep_secrets", True),
            plain_text=plain_text,
            deploy=_flag(body, "deploy", False),
            message=body.get("message"),
        )
        return Response.json(201, version.list_item())

    def deploy(request: Request, body: dict[str, Any]) -> Response:
        entries = body.get("versions")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError('versions must be a list of {"version": id or number, "percentage"}')
        split = [(str(entry["version"]), entry.get("percentage", 100)) for entry in entries]
        deployment = lifecycle.admin_deploy(_target(request), split, _author(body, ADMIN_AUTHOR))
        return Response.json(201, deployment.view())

    def hand_edit(request: Request, body: dict[str, Any]) -> Response:
        upserts = body.get("set") or {}
        deletes = body.get("delete") or []
        if not isinstance(upserts, dict) or not isinstance(deletes, list):
            raise ValueError("set must map names to secret bodies and delete must list names")
        version = lifecycle.hand_edit(
            _target(request),
            upserts,
            [str(name) for name in deletes],
            _author(body, HAND_EDITOR),
            deploy=_flag(body, "deploy", True),
            message=body.get("message"),
        )
        return Response.json(201, version.list_item())

    def get_latency(_: Request, __: dict[str, Any]) -> Response:
        return Response.json(200, emulator.write_latency.spec.describe())

    def set_latency(_: Request, body: dict[str, Any]) -> Response:
        if "spec" in body:
            spec = LatencySpec.parse(str(body["spec"]))
        else:
            seed = body.get("seed")
            spec = LatencySpec(
                str(body.get("kind", "fixed")),
                float(body.get("a", 0.0)),
                float(body.get("b", 0.0)),
                int(seed) if seed is not None else None,
            )
        emulator.set_write_latency(spec)
        return Response.json(200, spec.describe())

    def edit_stats(_: Request, __: dict[str, Any]) -> Response:
        return Response.json(200, emulator.edit_stats())

    def reset_edit_stats(_: Request, __: dict[str, Any]) -> Response:
        emulator.edits.reset_counts()
        return Response.json(200, emulator.edit_stats())

    for scripts in (SCRIPTS_PLAIN, SCRIPTS_IN_NAMESPACE):
        script = scripts + r"/(?P<script>[^/]+)"
        router.add(["GET"], script + "/versions", _admin(all_versions))
        router.add(["GET"], script + r"/versions/(?P<version>[^/]+)", _admin(one_version))
        router.add(["POST"], script + "/versions", _admin(upload_code))
        router.add(["POST"], script + "/deployments", _admin(deploy))
        router.add(["POST"], script + "/hand-edit", _admin(hand_edit))
    router.add(["GET"], ADMIN_PREFIX + "/latency", _admin(get_latency))
    router.add(["POST"], ADMIN_PREFIX + "/latency", _admin(set_latency))
    router.add(["GET"], ADMIN_PREFIX + "/edits", _admin(edit_stats))
    router.add(["DELETE"], ADMIN_PREFIX + "/edits", _admin(reset_edit_stats))
