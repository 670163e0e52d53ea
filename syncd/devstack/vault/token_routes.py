"""``auth/token/*``: create, lookup(-self), renew(-self), revoke(-self).

A child token's policies must be a subset of its parent's unless the parent is root (400
``child policies must be subset of parent``); orphans (``no_parent``) need root or sudo.
Without policies a child inherits the parent's. A token created by root with no TTL and the root
policy never expires; every other token defaults to the system TTL (768h).
"""

from __future__ import annotations

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.routing import READ, WRITE, Call, LogicalRouter
from syncd.devstack.vault.state import VaultState
from syncd.devstack.vault.tokens import SYSTEM_DEFAULT_TTL, Token, normalize_policies
from syncd.devstack.vault.wire import (
    VaultError,
    envelope,
    json_response,
    no_content,
    parse_bool,
    parse_duration,
    parse_int,
    string_list,
)


def _caller(call: Call) -> Token:
    if call.token is None:  # the server only routes here with a valid token
        raise VaultError(403, "permission denied")
    return call.token


def _create_token(state: VaultState, call: Call) -> Response:
    parent = _caller(call)
    requested = string_list(call.get("policies"))
    no_default = parse_bool(call.get("no_default_policy"))
    if not requested:
        requested = [p for p in parent.policies if p != "default"] or (["root"] if parent.is_root else [])
    elif not parent.is_root:
        allowed = set(parent.policies)
        if not set(normalize_policies(requested, add_default=False)) <= allowed | {"default"}:
            raise VaultError(400, "child policies must be subset of parent")
    orphan = parse_bool(call.get("no_parent")) or call.params.get("orphan") == "-orphan"
    if parse_bool(call.get("no_parent")) and not parent.is_root:
        sudo = state.acl_for(parent).allows(call.full_path, "update", sudo=True)
        if not sudo:
            raise VaultError(400, "root or sudo privileges required to create orphan token")
    policies = normalize_policies(requested, add_default=not no_default)
    ttl = parse_duration(call.get("ttl") or call.get("lease"), "ttl")
    period = parse_duration(call.get("period"), "period")
    if not ttl and not period and not (policies == ["root"] and parent.is_root and not parent.ttl):
        ttl = SYSTEM_DEFAULT_TTL
    meta = call.get("meta")
    display = str(call.get("display_name") or "")
    token, warnings = state.tokens.issue(
        call.now,
        policies=policies,
        ttl=ttl,
        explicit_max_ttl=parse_duration(call.get("explicit_max_ttl"), "explicit_max_ttl"),
        period=period,
        renewable=parse_bool(call.get("renewable"), True),
        display_name=f"token-{display}" if display else "token",
        meta={str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else None,
        path=call.full_path,
        parent=parent,
        orphan=orphan,
        num_uses=parse_int(call.get("num_uses"), "num_uses"),
        token_id=str(call.get("id")) if call.get("id") and parent.is_root else None,
    )
    return json_response(200, envelope(None, auth=token.auth_block(), warnings=warnings))


def register_token_routes(router: LogicalRouter, state: VaultState) -> None:
    def target(call: Call) -> Token:
        token_id = call.params.get("token") or call.get("token")
        if not token_id:
            raise VaultError(400, "missing token to look up")
        found = state.tokens.valid(str(token_id), call.now)
        if found is None:
            raise VaultError(403, "bad token")
        return found

    def lookup_self(call: Call) -> Response:
        return json_response(200, envelope(_caller(call).lookup_data(call.now)))

    def lookup(call: Call) -> Response:
        return json_response(200, envelope(target(call).lookup_data(call.now)))

    def renew(token: Token, call: Call) -> Response:
        warnings = state.tokens.renew(token, parse_duration(call.get("increment"), "increment"), call.now)
        return json_response(200, envelope(None, auth=token.auth_block(), warnings=warnings))

    def renew_self(call: Call) -> Response:
        return renew(_caller(call), call)

    def renew_other(call: Call) -> Response:
        return renew(target(call), call)

    def revoke_self(call: Call) -> Response:
        state.tokens.revoke(_caller(call))
        return no_content()

    def revoke_other(call: Call) -> Response:
        token_id = call.get("token")
        found = state.tokens.tokens.get(str(token_id)) if token_id else None
        if found is not None:
            state.tokens.revoke(found)
        return no_content()

    router.add([WRITE], r"auth/token/create(?P<orphan>-orphan)?", lambda call: _create_token(state, call))
    router.add([READ], "auth/token/lookup-self", lookup_self)
    router.add([WRITE], "auth/token/lookup", lookup)
    router.add([READ], r"auth/token/lookup/(?P<token>.+)", lookup)
    router.add([WRITE], "auth/token/renew-self", renew_self)
    router.add([WRITE], "auth/token/renew", renew_other)
    router.add([WRITE], "auth/token/revoke-self", revoke_self)
    router.add([WRITE], "auth/token/revoke", revoke_other)
