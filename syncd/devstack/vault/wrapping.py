"""Response wrapping: ``X-Vault-Wrap-TTL`` on any request, and ``sys/wrapping/{wrap,unwrap,lookup,rewrap}``.

Verified against Vault's HTTP layer and core as kept by OpenBao (``internal/http/handler.go``
``requestWrapInfo``, ``internal/http/logical.go`` ``respondLogical``, ``internal/vault/wrapping.go``
``wrapInCubbyhole`` / ``validateWrappingToken``, ``internal/vault/request_handling.go``,
``internal/vault/logical_system.go`` ``handleWrapping*``, ``sdk/logical/translate_response.go``,
``sdk/helper/consts/error.go``) and hvac 2.4.0 (``sys.wrap``, ``sys.unwrap``, ``wrap_ttl=`` on the
adapter and on AppRole's ``generate_secret_id``):

- The header takes seconds or a Go duration; a bad one is 400 ``error parsing X-Vault-Wrap-TTL
  header: time: invalid duration "<text>"`` (or ``...: requested wrap ttl cannot be negative``),
  answered before any token check. ``0`` means no wrapping.
- A successful response that has a body (not a 204, not an error) is stored under a new token with
  the single policy ``response-wrapping``, one use, ``ttl`` = the wrap TTL (orphan, not renewable),
  and the answer becomes ``{"request_id": "", "lease_id": "", "renewable": false,
  "lease_duration": 0, "data": null, "wrap_info": {"token", "accessor", "ttl", "creation_time",
  "creation_path", "wrapped_accessor"?}, "warnings": null, "auth": null, "mount_type": ""}``.
  ``wrapped_accessor`` is the new token's accessor for a login, or ``secret_id_accessor`` for an
  AppRole secret id; it is left out when empty (``omitempty``).
- ``unwrap``, ``lookup`` and ``rewrap`` first validate the wrapping token: the body's ``token``, or
  else the client token. Missing: 403 ``error validating wrapping token: token is empty`` (``...:
  empty token in request body`` / ``could not decode token in request body``); unknown, expired,
  used or not a wrapping token: 400 ``wrapping token is not valid or does not exist``. Only then
  is the client token checked (``lookup`` is unauthenticated; the ``response-wrapping`` policy
  allows ``update`` on ``sys/wrapping/unwrap``; the default policy allows wrap, lookup and unwrap).
- ``unwrap`` answers the stored response verbatim (status 200, compact JSON, the original
  ``request_id``) and revokes the token. ``lookup`` (GET or POST) answers ``creation_path``,
  ``creation_time``, ``creation_ttl``. ``rewrap`` moves the stored response to a new token with the
  original TTL and creation path (a shorter header TTL wins) and revokes the old one. ``wrap``
  without the header is 400 ``endpoint requires response wrapping to be used``.

Emulator shortcuts: the wrapping token's one use is spent only by ``unwrap``/``rewrap`` (the
emulator does not count token uses elsewhere); an ``unwrap`` response is never itself wrapped;
JWT-format wrapping tokens (``X-Vault-Wrap-Format: jwt``) are not modelled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from syncd.devstack.httpkit import Request, Response
from syncd.devstack.vault.routing import READ, WRITE, Call, LogicalHandler, LogicalRouter
from syncd.devstack.vault.tokens import Token
from syncd.devstack.vault.wire import JSON_HEADERS, VaultError, envelope, json_response, parse_duration, rfc3339

if TYPE_CHECKING:
    from syncd.devstack.vault.state import VaultState

RESPONSE_WRAPPING_POLICY_NAME = "response-wrapping"
WRAP_TTL_HEADER = "X-Vault-Wrap-TTL"
INVALID_WRAPPING_TOKEN = "wrapping token is not valid or does not exist"
UNWRAP, LOOKUP, REWRAP, WRAP = (f"sys/wrapping/{verb}" for verb in ("unwrap", "lookup", "rewrap", "wrap"))
VALIDATED_PATHS = frozenset({UNWRAP, LOOKUP, REWRAP})
_ENVELOPE_KEYS = tuple(envelope())  # the standard body keys, in order


def requested_wrap_ttl(request: Request) -> int:
    """The ``X-Vault-Wrap-TTL`` header in seconds (0 when absent), parsed as ``ParseDurationSecond``."""
    text = (request.header(WRAP_TTL_HEADER) or "").strip()
    if not text:
        return 0
    negative = text.startswith("-")
    try:
        ttl = parse_duration(text[1:] if negative else text, "wrap ttl")
    except VaultError:
        raise VaultError(400, f'error parsing X-Vault-Wrap-TTL header: time: invalid duration "{text}"') from None
    if negative and ttl != 0:
        raise VaultError(400, "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative")
    return ttl


@dataclass
class WrappedResponse:
    """What Vault keeps in the wrapping token's cubbyhole (``response`` and ``wrapinfo``)."""

    response: str  # the original HTTP response, marshalled (compact JSON)
    creation_ttl: int
    creation_time: float
    creation_path: str


class ResponseWrapping:
    """Wrapping tokens and their stored responses; the server calls ``validate`` and ``handler``."""

    def __init__(self, state: VaultState) -> None:
        self.state = state
        self.stored: dict[str, WrappedResponse] = {}

    # -- the request hooks ------------------------------------------------------------------

    def handler(self, call: Call, handler: LogicalHandler, ttl: int) -> LogicalHandler:
        """``handler``, wrapping its answer when a TTL was asked for (rewrap wraps by itself)."""
        if ttl <= 0 or call.full_path in (UNWRAP, REWRAP):
            return handler

        def wrapped(inner: Call) -> Response:
            return self.wrap_response(inner, handler(inner), ttl)

        return wrapped

    def validate(self, call: Call, client_token: str | None) -> None:
        """``validateWrappingToken``, run before the client token and ACL checks."""
        self._wrapping_token(call, client_token)

    def wrap_response(self, call: Call, response: Response, ttl: int) -> Response:
        body = _json_object(response) if response.status == 200 and response.upgrade is None else None
        if body is None or not any(key in body for key in ("data", "auth")):
            return response  # nothing to wrap (a 204, an error, a raw body)
        stored = {key: body[key] for key in _ENVELOPE_KEYS if key in body}  # without sys/ top-level copies
        auth = body.get("auth")
        wrapped_accessor = ""
        if isinstance(auth, dict):
            wrapped_accessor = str(auth.get("accessor") or "")
        elif self._is_approle(call) and isinstance(body.get("data"), dict):
            wrapped_accessor = str(body["data"].get("secret_id_accessor") or "")
        text = json.dumps(stored, separators=(",", ":"))
        return self.issue(
            text, ttl, creation_path=call.full_path, now=call.now, caller=call.token, wrapped_accessor=wrapped_accessor
        )

    def issue(
        self,
        response: str,
        ttl: int,
        *,
        creation_path: str,
        now: float,
        caller: Token | None,
        wrapped_accessor: str = "",
    ) -> Response:
        """Store ``response`` under a new single-use wrapping token; the ``wrap_info`` answer."""
        self._purge(now)
        token, _ = self.state.tokens.issue(
            now,
            policies=[RESPONSE_WRAPPING_POLICY_NAME],
            ttl=ttl,
            explicit_max_ttl=ttl,
            renewable=False,
            display_name=caller.display_name if caller is not None else "",
            path=creation_path,
            num_uses=1,
        )
        self.stored[token.id] = WrappedResponse(response, ttl, now, creation_path)
        info: dict[str, Any] = {
            "token": token.id,
            "accessor": token.accessor,
            "ttl": ttl,
            "creation_time": rfc3339(now),
            "creation_path": creation_path,
        }
        if wrapped_accessor:
            info["wrapped_accessor"] = wrapped_accessor
        body = {
            "request_id": "",
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": None,
            "wrap_info": info,
            "warnings": None,
            "auth": None,
            "mount_type": "",
        }
        return json_response(200, body)

    # -- sys/wrapping/* ---------------------------------------------------------------------

    def unwrap(self, call: Call) -> Response:
        token, entry = self._wrapping_token(call, call.token.id if call.token else None)
        self._spend(token)
        return Response(200, entry.response.encode(), dict(JSON_HEADERS))

    def lookup(self, call: Call) -> Response:
        _, entry = self._wrapping_token(call, call.token.id if call.token else None)
        data = {
            "creation_path": entry.creation_path,
            "creation_time": rfc3339(entry.creation_time),
            "creation_ttl": entry.creation_ttl,
        }
        return json_response(200, envelope(data))

    def rewrap(self, call: Call) -> Response:
        token, entry = self._wrapping_token(call, call.token.id if call.token else None)
        self._spend(token)
        ttl = entry.creation_ttl
        asked = requested_wrap_ttl(call.request)
        if 0 < asked < ttl:
            ttl = asked
        return self.issue(entry.response, ttl, creation_path=entry.creation_path, now=call.now, caller=call.token)

    def wrap(self, call: Call) -> Response:
        if requested_wrap_ttl(call.request) <= 0:
            raise VaultError(400, "endpoint requires response wrapping to be used")
        return json_response(200, envelope(dict(call.data)))

    # -- internals --------------------------------------------------------------------------

    def _wrapping_token(self, call: Call, client_token: str | None) -> tuple[Token, WrappedResponse]:
        given = call.data.get("token")
        if given is not None:
            if not isinstance(given, str):
                raise VaultError(403, "error validating wrapping token: could not decode token in request body")
            if not given:
                raise VaultError(403, "error validating wrapping token: empty token in request body")
            token_id = given
        elif client_token:
            token_id = client_token
        else:
            raise VaultError(403, "error validating wrapping token: token is empty")
        token = self.state.tokens.valid(token_id, call.now)
        entry = self.stored.get(token_id)
        if token is None or token.policies != [RESPONSE_WRAPPING_POLICY_NAME] or entry is None:
            raise VaultError(400, INVALID_WRAPPING_TOKEN)
        return token, entry

    def _spend(self, token: Token) -> None:
        self.stored.pop(token.id, None)
        self.state.tokens.revoke(token)

    def _purge(self, now: float) -> None:
        for token_id in [t for t in self.stored if self.state.tokens.valid(t, now) is None]:
            del self.stored[token_id]

    def _is_approle(self, call: Call) -> bool:
        if not call.full_path.startswith("auth/"):
            return False
        mount = self.state.auth_mounts.get(call.mount_path)
        return mount is not None and mount.type == "approle"


def _json_object(response: Response) -> dict[str, Any] | None:
    try:
        parsed = json.loads(response.body) if response.body else None
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def register_wrapping_routes(router: LogicalRouter, wrapping: ResponseWrapping) -> None:
    router.add([WRITE], "sys/wrapping/wrap", wrapping.wrap)
    router.add([WRITE], "sys/wrapping/unwrap", wrapping.unwrap)
    router.add([READ, WRITE], "sys/wrapping/lookup", wrapping.lookup, unauthenticated=True)
    router.add([WRITE], "sys/wrapping/rewrap", wrapping.rewrap)
