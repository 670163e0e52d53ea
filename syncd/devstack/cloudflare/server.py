"""``CloudflareEmulator``: the Cloudflare API v4 Workers secrets endpoints on a local port.

Wires the store, credentials, rate limiter, real routes (``api``) and admin routes (``admin``)
onto the shared ``httpkit`` server. One default account (32 lowercase hex characters) and one
default write token exist from the start; ``scripts`` pre-creates Worker scripts in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from syncd.devstack.cloudflare.admin import register_admin_routes
from syncd.devstack.cloudflare.api import API_PREFIX, CloudflareApi
from syncd.devstack.cloudflare.auth import CredentialRegistry
from syncd.devstack.cloudflare.config import EmulatorConfig
from syncd.devstack.cloudflare.ratelimit import RateLimiter
from syncd.devstack.cloudflare.store import WorkerStore
from syncd.devstack.httpkit import ADMIN_PREFIX, Clock, EmulatorServer, EmulatorState, Request, Response, Router


class CloudflareEmulator:
    """A local, faithful stand-in for the Cloudflare API's Worker secrets endpoints."""

    def __init__(  # noqa: PLR0917 - the positional order is the published API
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        rate_limit: int = 1200,
        rate_window: float = 300.0,
        scripts: Iterable[str] = (),
        *,
        rate_block: float = 300.0,
        config: EmulatorConfig | None = None,
    ) -> None:
        self.state = EmulatorState(clock)
        self._config = config or EmulatorConfig()
        self.store = WorkerStore(self.state.lock, self.state.clock, self._config)
        self.credentials = CredentialRegistry(self.state.lock)
        self.rate_limiter = RateLimiter(self.state.clock, self.state.lock, rate_limit, rate_window, rate_block)
        self.account_id = self.store.create_account()
        self.api_token = self.credentials.create_token("write")
        for name in scripts:
            self.store.create_script(self.account_id, name)
        router = Router()
        api = CloudflareApi(self)
        api.register(router)
        register_admin_routes(router, self)

        def not_found(request: Request) -> Response:
            if request.path.startswith(ADMIN_PREFIX):
                return Response.json(404, {"error": f"no admin route {request.method} {request.path}"})
            return api.not_found(request)

        self._server = EmulatorServer(
            router, self.state, not_found=not_found, method_not_allowed=api.method_not_allowed, host=host, port=port
        )

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def api_base(self) -> str:
        return self.url + API_PREFIX

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> CloudflareEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> CloudflareEmulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- configuration --------------------------------------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        return self._config

    @config.setter
    def config(self, value: EmulatorConfig) -> None:
        with self.state.lock:
            self._config = value
            self.store.config = value

    def set_rate_limit(self, limit: int, window: float, block: float = 300.0) -> None:
        self.rate_limiter.configure(limit, window, block)

    # -- conveniences for tests and tools (the admin API does the same over HTTP) ----------------

    def create_account(self, account_id: str | None = None) -> str:
        return self.store.create_account(account_id)

    def create_namespace(self, name: str, account_id: str | None = None) -> None:
        self.store.create_namespace(account_id or self.account_id, name)

    def create_script(
        self,
        name: str,
        plain_text: dict[str, str] | None = None,
        namespace: str | None = None,
        account_id: str | None = None,
    ) -> None:
        self.store.create_script(account_id or self.account_id, name, plain_text, namespace)

    def set_undeployed(
        self, script: str, undeployed: bool = True, namespace: str | None = None, account_id: str | None = None
    ) -> None:
        self.store.set_undeployed(account_id or self.account_id, script, undeployed, namespace)

    def create_token(self, permission: str = "write", token: str | None = None, account_id: str | None = None) -> str:
        return self.credentials.create_token(permission, token, account_id)

    def revoke_token(self, token: str) -> None:
        """The token is unknown from the next request on (9109); ``KeyError`` if it never was."""
        self.credentials.revoke_token(token)

    def add_global_key(self, email: str, key: str) -> None:
        self.credentials.add_global_key(email, key)

    def secrets_of(
        self, script: str, namespace: str | None = None, account_id: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Every secret of the script with its full body, value included."""
        with self.state.lock:
            found = self.store.script(account_id or self.account_id, script, namespace)
            return {name: dict(secret) for name, secret in found.secrets.items()}

    def versions_of(self, script: str, namespace: str | None = None, account_id: str | None = None) -> int:
        with self.state.lock:
            return self.store.script(account_id or self.account_id, script, namespace).versions
