"""A scripted Vault behind a requests transport adapter, so the real hvac client is exercised.

``FakeVault.transport()`` serves the same script to the reader's lean path (``vault_http``): its
requests are recorded as ``requests.PreparedRequest`` too, and a scripted requests exception
becomes the ``VaultTransportError`` a real transport raises for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import hvac
import requests
from requests.adapters import BaseAdapter

from syncd.clients.vault import build_hvac_client
from syncd.clients.vault_http import HttpReply, VaultTransportError

Reply = tuple[int, Any] | Exception | Callable[[requests.PreparedRequest], tuple[int, Any]]

ADDRESS = "http://vault.test:8200"


def envelope(data: Any = None, *, auth: Any = None, warnings: Any = None) -> dict[str, Any]:
    return {
        "request_id": "00000000-0000-0000-0000-000000000000",
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": warnings,
        "auth": auth,
        "mount_type": "kv",
    }


class FakeVault(BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[requests.PreparedRequest] = []

    def on(self, method: str, path: str, *replies: Reply) -> None:
        """Answer ``method path`` (path without /v1 and query) with the replies in turn; the last repeats."""
        self.routes[(method.upper(), path)] = list(replies)

    def calls(self, method: str, path: str) -> list[requests.PreparedRequest]:
        return [r for r in self.requests if r.method == method.upper() and self.path_of(r) == path]

    @staticmethod
    def path_of(request: requests.PreparedRequest) -> str:
        return urlsplit(request.url or "").path.removeprefix("/v1/")

    @staticmethod
    def query_of(request: requests.PreparedRequest) -> Mapping[str, list[str]]:
        return parse_qs(urlsplit(request.url or "").query)

    @staticmethod
    def json_of(request: requests.PreparedRequest) -> Any:
        body = request.body
        return json.loads(body) if body else None

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.requests.append(request)
        key = (str(request.method), self.path_of(request))
        replies = self.routes.get(key)
        if not replies:
            reply: Reply = (404, {"errors": []})
        else:
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            reply = reply(request)
        status, body = reply
        response = requests.Response()
        response.status_code = status
        response.request = request
        response.url = request.url or ""
        if status != 204:
            response._content = json.dumps(body).encode()
            response.headers["Content-Type"] = "application/json"
        else:
            response._content = b""
        return response

    def close(self) -> None:
        pass

    def transport(self) -> FakeTransport:
        return FakeTransport(self)


class FakeTransport:
    """The lean reads' transport (``vault_http.VaultTransport``) over a ``FakeVault``."""

    base_url = ADDRESS

    def __init__(self, fake: FakeVault) -> None:
        self.fake = fake

    def get(self, target: str, headers: Mapping[str, str]) -> HttpReply:
        request = requests.Request("GET", ADDRESS + target, headers=dict(headers)).prepare()
        failure: VaultTransportError | None = None
        try:
            response = self.fake.send(request)
        except requests.exceptions.Timeout as exc:
            failure = VaultTransportError("timeout", type(exc).__name__)
        except requests.exceptions.RequestException as exc:
            failure = VaultTransportError("connection", type(exc).__name__)
        if failure is not None:
            raise failure
        return HttpReply(response.status_code, response.headers, response.content)

    def close(self) -> None:
        pass


def hvac_client(fake: FakeVault, token: str = "", *, plain: bool = False) -> Any:
    """The production client (``build_hvac_client``) over the fake; ``plain``: a bare hvac.Client."""
    session = requests.Session()
    session.mount("http://", fake)
    if plain:
        return hvac.Client(url=ADDRESS, token=token, session=session)
    client = build_hvac_client(
        ADDRESS, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=4, session=session
    )
    client.token = token
    return client
