"""The real Cloudflare API v4 paths the emulator serves, under ``/client/v4``.

Scripts (``{base}`` is ``/accounts/{account_id}/workers/scripts/{script}`` or, for Workers for
Platforms, ``/accounts/{account_id}/workers/dispatch/namespaces/{ns}/scripts/{script}``):
``PUT {base}`` (upload), ``GET|PUT {base}/secrets``, ``GET|DELETE {base}/secrets/{name}``
(``?url_encoded=true`` percent-decodes the name; without it the path segment is taken as sent,
which is how names with special characters became undeletable before the flag existed),
``PATCH {base}/secrets-bulk``. Tokens: ``GET /user/tokens/verify``,
``GET /accounts/{account_id}/tokens/verify``. User details: ``GET /user``.

Versions, deployments and settings (``versions_api``): ``GET {base}/versions``,
``GET {base}/versions/{id}``, ``POST {base}/versions`` (upload without deploying),
``GET|POST {base}/deployments``, ``GET {base}/deployments/{id}``, ``GET|PATCH {base}/settings``, and
the beta ``/accounts/{account_id}/workers/workers/{script}/versions[/{id}|/latest]``.

Every request on these paths is authenticated, counted by the rate limiter and answered in the
envelope with ``Ratelimit`` headers; see ``auth`` and ``ratelimit``. Every write to a script
(any verb but GET) holds that script's edit slot for its whole duration, including the modelled
write latency (``edits``): a second write to the same script meanwhile is answered 429.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from syncd.devstack.cloudflare.auth import DEFAULT_USER_EMAIL, Principal, user_id_of
from syncd.devstack.cloudflare.envelope import (
    COULD_NOT_ROUTE,
    METHOD_NOT_AVAILABLE,
    NO_ROUTE,
    TOKEN_VALID,
    TOKEN_VALID_MESSAGE,
    ApiError,
    failure,
    parse_json_body,
    success,
)
from syncd.devstack.cloudflare.ratelimit import RateDecision
from syncd.devstack.cloudflare.services_api import register_service_routes
from syncd.devstack.cloudflare.upload import parse_upload
from syncd.devstack.cloudflare.versions import Author
from syncd.devstack.cloudflare.versions_api import register_version_routes
from syncd.devstack.httpkit import Request, Response, Router

if TYPE_CHECKING:
    from syncd.devstack.cloudflare.server import CloudflareEmulator

API_PREFIX = "/client/v4"
ACCOUNT = r"/accounts/(?P<account>[0-9a-f]{32})"
SCRIPT_BASES = (
    ACCOUNT + r"/workers/scripts/(?P<script>[^/]+)",
    ACCOUNT + r"/workers/dispatch/namespaces/(?P<namespace>[^/]+)/scripts/(?P<script>[^/]+)",
)
ANONYMOUS_BUCKET = "anonymous"

Action = Callable[[Request, Author], Response]
Handler = Callable[[Request], Response]


def author_of(principal: Principal, request: Request) -> Author:
    """Who a write is recorded as: the credential's user, and "wrangler" when wrangler calls (UNVERIFIED)."""
    email = principal.email or DEFAULT_USER_EMAIL
    source = "wrangler" if "wrangler" in (request.header("user-agent") or "").lower() else "api"
    return Author(email, user_id_of(email), source)


class CloudflareApi:
    """Handlers for the real paths, bound to one emulator."""

    def __init__(self, emulator: CloudflareEmulator) -> None:
        self.emulator = emulator

    def register(self, router: Router) -> None:
        register_version_routes(router, self)
        register_service_routes(router, self)  # what wrangler deploy / versions upload call besides
        for base in SCRIPT_BASES:
            prefix = API_PREFIX + base
            router.add(["PUT"], prefix, self._guarded("write", self.upload_script))
            router.add(["GET"], prefix + "/secrets", self._guarded("read", self.list_secrets))
            router.add(["PUT"], prefix + "/secrets", self._guarded("write", self.put_secret))
            router.add(["GET"], prefix + r"/secrets/(?P<secret>[^/]+)", self._guarded("read", self.get_secret))
            router.add(["DELETE"], prefix + r"/secrets/(?P<secret>[^/]+)", self._guarded("write", self.delete_secret))
            router.add(["PATCH"], prefix + "/secrets-bulk", self._guarded("write", self.bulk_secrets))
        router.add(["GET"], API_PREFIX + "/user", self._counted(self.user_details))
        router.add(["GET"], API_PREFIX + "/user/tokens/verify", self._counted(self.verify_user_token))
        router.add(["GET"], API_PREFIX + ACCOUNT + "/tokens/verify", self._counted(self.verify_account_token))

    # -- pipeline -----------------------------------------------------------------------------

    def _rate(self, principal: Principal | None) -> RateDecision:
        bucket = principal.bucket if principal is not None else ANONYMOUS_BUCKET
        return self.emulator.rate_limiter.hit(bucket)

    def _guarded(self, needed: str, action: Action) -> Handler:
        """Authenticate, count, authorize for the path's account, run, add the rate headers."""

        def handler(request: Request) -> Response:
            try:
                principal = self.emulator.credentials.authenticate(request, self.emulator.config)
            except ApiError as error:
                refusal = failure(error)
                return self._finish(self._rate(None), lambda: refusal)
            decision = self._rate(principal)

            def run() -> Response:
                account = request.params["account"]
                self.emulator.credentials.authorize(
                    principal, account, needed, self.emulator.store.has_account(account)
                )
                author = author_of(principal, request)
                if needed == "write" and "script" in request.params:
                    return self._edit(request, lambda: action(request, author))
                return action(request, author)

            return self._finish(decision, run)

        return handler

    def _edit(self, request: Request, run: Callable[[], Response]) -> Response:
        """One write to one script: its slot held throughout, the latency slept outside every lock."""
        key = (request.params["account"], request.params.get("namespace"), request.params["script"])
        with self.emulator.edits.hold(key) as admitted:
            if not admitted:
                config = self.emulator.config
                raise ApiError(
                    config.concurrent_edit_status, config.concurrent_edit_code, config.concurrent_edit_message
                )
            self.emulator.write_latency.sleep(self.emulator.write_latency.draw())
            return run()

    def _counted(self, action: Handler) -> Handler:
        """For endpoints that check credentials themselves: count in the caller's bucket."""

        def handler(request: Request) -> Response:
            try:
                principal: Principal | None = self.emulator.credentials.authenticate(request, self.emulator.config)
            except ApiError:
                principal = None
            return self._finish(self._rate(principal), lambda: action(request))

        return handler

    def _finish(self, decision: RateDecision, run: Callable[[], Response]) -> Response:
        if not decision.allowed:
            return failure(decision.error())
        try:
            response = run()
        except ApiError as error:
            response = failure(error)
        response.headers.update(decision.headers())
        return response

    def not_found(self, request: Request) -> Response:
        path = request.path.removeprefix(API_PREFIX) or "/"
        error = ApiError(
            self.emulator.config.unknown_route_status,
            COULD_NOT_ROUTE,
            f"Could not route to {path}, perhaps your object identifier is invalid?",
            extra_errors=[{"code": NO_ROUTE, "message": "No route for that URI"}],
        )
        return self._counted(lambda _: failure(error))(request)

    def method_not_allowed(self, request: Request) -> Response:
        error = ApiError(
            self.emulator.config.method_not_allowed_status,
            METHOD_NOT_AVAILABLE,
            f"Method {request.method} not available for that URI.",
        )
        return self._counted(lambda _: failure(error))(request)

    # -- handlers -----------------------------------------------------------------------------

    @staticmethod
    def _target(request: Request) -> tuple[str, str, str | None]:
        return request.params["account"], request.params["script"], request.params.get("namespace")

    def _secret_name(self, request: Request) -> str:
        raw = request.params["secret"]
        return unquote(raw) if request.query_value("url_encoded") == "true" else raw

    def upload_script(self, request: Request, author: Author) -> Response:
        account, script, namespace = self._target(request)
        upload = parse_upload(request.header("content-type"), request.body)
        result = self.emulator.store.upload_script(account, script, namespace, upload, author)
        return success(result)

    def list_secrets(self, request: Request, _: Author) -> Response:
        return success(self.emulator.store.list_secrets(*self._target(request)))

    def get_secret(self, request: Request, _: Author) -> Response:
        return success(self.emulator.store.get_secret(*self._target(request), self._secret_name(request)))

    def put_secret(self, request: Request, author: Author) -> Response:
        body: Any = parse_json_body(request.body)
        return success(self.emulator.store.put_secret(*self._target(request), body, author))

    def delete_secret(self, request: Request, author: Author) -> Response:
        self.emulator.store.delete_secret(*self._target(request), self._secret_name(request), author)
        return success(None)

    def bulk_secrets(self, request: Request, author: Author) -> Response:
        body: Any = parse_json_body(request.body)
        return success(self.emulator.store.bulk_patch(*self._target(request), body, author))

    def user_details(self, request: Request) -> Response:
        return success(self.emulator.credentials.user_details(request, self.emulator.config))

    def verify_user_token(self, request: Request) -> Response:
        result = self.emulator.credentials.verify(request, self.emulator.config, None)
        return success(result, messages=[{"code": TOKEN_VALID, "message": TOKEN_VALID_MESSAGE}])

    def verify_account_token(self, request: Request) -> Response:
        result = self.emulator.credentials.verify(request, self.emulator.config, request.params["account"])
        return success(result, messages=[{"code": TOKEN_VALID, "message": TOKEN_VALID_MESSAGE}])
