"""The runtime's own loopback server, which the Workers reach through a service binding.

- ``GET /secrets-store/{account}/{store_id}/{secret_name}``: the Secrets Store's current value,
  from the injected ``secrets_store_value(account_id, store_id, secret_name) -> str | None``
  (the Cloudflare emulator's, when it has a Secrets Store): ``200 {"value"}``, or 404 when the
  secret (or the store, or any Secrets Store at all) is missing. This is how a
  ``secrets_store_secret`` binding's ``get()`` reads the value at request time.
- ``GET /__devstack/workers``: the runtime's status (``WorkersRuntime.status``), also reachable on
  the Workers address itself (the router forwards ``/__devstack/...`` here).

Only workerd calls it; it listens on 127.0.0.1 on a free port.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from syncd.devstack.httpkit import EmulatorServer, EmulatorState, Request, Response, Router

SecretsStoreValue = Callable[[str, str, str], "str | None"]


class RuntimeBridge:
    def __init__(self, status: Callable[[], dict[str, Any]], secrets_store_value: SecretsStoreValue | None) -> None:
        self._secrets_store_value = secrets_store_value
        router = Router()
        router.add(["GET"], r"/secrets-store/(?P<account>[^/]+)/(?P<store>[^/]+)/(?P<name>[^/]+)", self._secret)
        router.add(["GET"], r"/__devstack/workers", lambda _: Response.json(200, status()))
        self._server = EmulatorServer(
            router,
            EmulatorState(),
            not_found=lambda r: Response.json(404, {"error": f"no route {r.method} {r.path}"}),
            method_not_allowed=lambda r: Response.json(405, {"error": f"{r.method} not allowed"}),
            host="127.0.0.1",
            port=0,
        )

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> RuntimeBridge:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def _secret(self, request: Request) -> Response:
        lookup = self._secrets_store_value
        if lookup is None:
            return Response.json(404, {"error": "this devstack has no Secrets Store"})
        p = request.params
        value = lookup(unquote(p["account"]), unquote(p["store"]), unquote(p["name"]))
        if value is None:
            return Response.json(404, {"error": "no such secret"})
        return Response.json(200, {"value": value})
