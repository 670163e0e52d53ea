"""``CloudflareEmulator``: the Cloudflare API v4 Workers secrets endpoints on a local port.

Wires the store, credentials, rate limiter, real routes (``api``) and admin routes (``admin``)
onto the shared ``httpkit`` server. One default account (32 lowercase hex characters) and one
default write token exist from the start; ``scripts`` pre-creates Worker scripts in it (each with
version 1 deployed at 100 %). ``write_latency`` (a ``LatencySpec`` or its text form, see ``edits``)
delays every script write; off by default.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from syncd.devstack.cloudflare.admin import register_admin_routes
from syncd.devstack.cloudflare.api import API_PREFIX, CloudflareApi
from syncd.devstack.cloudflare.auth import CredentialRegistry
from syncd.devstack.cloudflare.config import EmulatorConfig
from syncd.devstack.cloudflare.edits import EditSlots, LatencySpec, WriteLatency
from syncd.devstack.cloudflare.lifecycle import Lifecycle
from syncd.devstack.cloudflare.ratelimit import RateLimiter
from syncd.devstack.cloudflare.secrets_store import SecretsStoreState
from syncd.devstack.cloudflare.secrets_store_admin import register_secrets_store_admin_routes
from syncd.devstack.cloudflare.secrets_store_api import register_secrets_store_routes
from syncd.devstack.cloudflare.store import ADMIN_AUTHOR, HAND_EDITOR, WorkerStore
from syncd.devstack.cloudflare.versions import Author, Deployment, Version
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
        write_latency: LatencySpec | str | None = None,
    ) -> None:
        self.state = EmulatorState(clock)
        self._config = config or EmulatorConfig()
        self.store = WorkerStore(self.state.lock, self.state.clock, self._config)
        self.lifecycle = Lifecycle(self.store)
        self.secrets_store = SecretsStoreState(self.state.lock, self.state.clock, lambda: self._config.secrets_store)
        self.edits = EditSlots()
        self.write_latency = WriteLatency(
            LatencySpec.parse(write_latency) if isinstance(write_latency, str) else write_latency
        )
        self.credentials = CredentialRegistry(self.state.lock)
        self.rate_limiter = RateLimiter(self.state.clock, self.state.lock, rate_limit, rate_window, rate_block)
        self.account_id = self.store.create_account()
        self.api_token = self.credentials.create_token("write")
        for name in scripts:
            self.store.create_script(self.account_id, name)
        router = Router()
        api = CloudflareApi(self)
        api.register(router)
        register_secrets_store_routes(router, api)
        register_admin_routes(router, self)
        register_secrets_store_admin_routes(router, self)

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
        *,
        with_version: bool = True,
    ) -> None:
        self.store.create_script(account_id or self.account_id, name, plain_text, namespace, with_version=with_version)

    def set_undeployed(
        self, script: str, undeployed: bool = True, namespace: str | None = None, account_id: str | None = None
    ) -> None:
        """Make the real state: ``True`` uploads a code version (secrets kept) without deploying it,
        ``False`` deploys the latest version at 100 %."""
        target = (account_id or self.account_id, script, namespace)
        if undeployed:
            self.lifecycle.upload_code(target, deploy=False, message="devstack: new version, not deployed")
        else:
            self.deploy(script, {self.latest_version(script, namespace, account_id).id: 100}, namespace, account_id)

    def set_write_latency(self, latency: LatencySpec | str) -> None:
        self.write_latency.configure(LatencySpec.parse(latency) if isinstance(latency, str) else latency)

    def edit_stats(self) -> dict[str, int]:
        """``in_flight`` script writes, ``concurrent_edit_429s`` answered and ``writes`` admitted."""
        return self.edits.stats()

    def upload_code(
        self,
        script: str,
        *,
        deploy: bool = False,
        keep_secrets: bool = True,
        author: Author = ADMIN_AUTHOR,
        message: str | None = None,
        namespace: str | None = None,
        account_id: str | None = None,
    ) -> Version:
        target = (account_id or self.account_id, script, namespace)
        return self.lifecycle.upload_code(target, author, keep_secrets=keep_secrets, deploy=deploy, message=message)

    def deploy(
        self,
        script: str,
        split: dict[str, float],
        namespace: str | None = None,
        account_id: str | None = None,
        author: Author = ADMIN_AUTHOR,
    ) -> Deployment:
        """Deploy versions (by id or number) at the given percentages, e.g. ``{"3": 90, "4": 10}``."""
        target = (account_id or self.account_id, script, namespace)
        return self.lifecycle.admin_deploy(target, list(split.items()), author)

    def hand_edit(
        self,
        script: str,
        *,
        upserts: dict[str, Any] | None = None,
        deletes: list[str] | None = None,
        author: Author | None = None,
        deploy: bool = True,
        namespace: str | None = None,
        account_id: str | None = None,
    ) -> Version:
        """A secret edit made outside syncd (default: someone else in the dashboard), deployed."""
        target = (account_id or self.account_id, script, namespace)
        who = author or HAND_EDITOR
        return self.lifecycle.hand_edit(target, dict(upserts or {}), list(deletes or []), who, deploy=deploy)

    def version_list(self, script: str, namespace: str | None = None, account_id: str | None = None) -> list[Version]:
        """Every version, oldest first (values included: for assertions only)."""
        with self.state.lock:
            return list(self.store.script(account_id or self.account_id, script, namespace).history)

    def latest_version(self, script: str, namespace: str | None = None, account_id: str | None = None) -> Version:
        versions = self.version_list(script, namespace, account_id)
        if not versions:
            raise ValueError(f"script {script} has no versions")
        return versions[-1]

    def current_deployment(
        self, script: str, namespace: str | None = None, account_id: str | None = None
    ) -> Deployment | None:
        with self.state.lock:
            return self.store.script(account_id or self.account_id, script, namespace).deployment

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

    def secrets_store_value(self, account_id: str, store_id: str, secret_name: str) -> str | None:
        """The current value of a store's live secret, for devstack parts that feed Worker bindings."""
        return self.secrets_store.value_of(account_id, store_id, secret_name)

    def versions_of(self, script: str, namespace: str | None = None, account_id: str | None = None) -> int:
        with self.state.lock:
            return self.store.script(account_id or self.account_id, script, namespace).versions
