"""One Vault connection setting, and every transport built from it, with one redirect policy.

``VaultConnection`` holds what every way of talking to Vault shares: the address, namespace,
timeout, TLS (verify, CA bundle, client certificate), pool size and the proxies that apply (resolved
once from ``HTTPS_PROXY``/``NO_PROXY``). From it come:

- ``session()`` / ``hvac_client()``: hvac's requests session (``VaultSession``) and client, for
  login, renewal, the mount lookup and ``check``;
- ``lean_transport()``: the keep-alive read path of the per-secret reads (``vault_http``);
- ``tls_context()`` and ``websocket_connect()``: the events WebSocket (``app/notify/vault_events``).

Nothing reads hvac's or requests' private attributes: the transports are built from this value.

**Redirects** (``redirect_target``). What the official Vault client does, read in
``hashicorp/vault`` ``api/client.go`` (``DefaultConfig`` and ``rawRequestWithContext``): Go's own
redirect following is switched off (``CheckRedirect`` returns ``http.ErrUseLastResponse``); the
client then follows by itself **one** redirect (``redirectCount == 0``) of status **301, 302 or
307**, re-sending the same request (method, headers with ``X-Vault-Token``, JSON body) to the
``Location``, and refuses it when it would go from ``https`` to anything else ("redirect would cause
protocol downgrade"); ``VAULT_DISABLE_REDIRECTS`` turns it off. The redirect a Vault standby sends
(``http/handler.go`` ``respondStandby``) is a 307 to the active node's ``api_addr`` keeping the
request's path and query. hvac 2.4 instead leaves it to requests (``allow_redirects=True``): up to
30 redirects of any 3xx, ``https`` -> ``http`` allowed, POST turned into GET on 301/302, and only
``Authorization`` stripped across hosts, so ``X-Vault-Token`` (and a login body on 307) went along.

syncd follows the Go client: at most one redirect, 301/302/307 only, the same request re-sent,
never ``https`` -> ``http``; and one step stricter, a redirect to **another origin** (scheme, host,
port) is followed only when it keeps the request's path and query, which is what a standby's
redirect looks like (the Go client follows any ``Location``). Anything else is refused with
``RedirectRefused`` (nothing is sent there), which the Vault call maps to a non-retryable error. The
events WebSocket follows no cross-origin redirect at all (websockets would, dropping only
``Authorization`` and ``Cookie``).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import hvac
import requests
from requests.adapters import HTTPAdapter
from websockets.exceptions import SecurityError
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as _ws_connect

from syncd.clients.vault_calls import StatusAwareAdapter
from syncd.clients.vault_http import VaultTransport, build_vault_http, tls_context
from syncd.clients.vault_redirects import REDIRECT_STATUSES, RedirectRefused, origin, origin_text, redirect_target


class VaultSession(requests.Session):
    """A requests session that follows redirects only as ``redirect_target`` allows: at most one,
    re-sending the same request. ``connection`` is the setting it was built from (None for a bare
    session)."""

    def __init__(self, connection: VaultConnection | None = None) -> None:
        super().__init__()
        self.connection = connection

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["allow_redirects"] = False
        response = super().request(method, url, *args, **kwargs)
        target = redirect_target(response.status_code, response.url or str(url), response.headers.get("Location"))
        if target is None:
            return response
        response.close()
        return super().request(method, target, *args, **kwargs)  # once: a second redirect is returned as is


@dataclass(frozen=True)
class VaultConnection:
    """How to reach one Vault; see the module docstring. ``proxies`` are requests' scheme -> proxy
    URL, already filtered by ``NO_PROXY`` (``resolve`` reads them from the environment once)."""

    address: str
    namespace: str | None = None
    timeout: float = 10.0
    verify: bool | str = True
    client_cert: tuple[str, str] | None = None
    pool_size: int = 10
    proxies: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def resolve(
        cls,
        address: str,
        *,
        namespace: str | None = None,
        timeout: float = 10.0,
        verify: bool | str = True,
        client_cert: tuple[str, str] | None = None,
        pool_size: int = 10,
    ) -> VaultConnection:
        """The setting with the proxies the environment names for ``address`` (read now, once:
        with ``trust_env`` requests rescans the environment at every request, bench/README.md)."""
        proxies = dict(requests.utils.get_environ_proxies(address))
        return cls(address, namespace or None, timeout, verify, client_cert, max(1, pool_size), proxies)

    def session(self, mounted: requests.Session | None = None) -> VaultSession:
        """hvac's session: a pool of ``pool_size``, no urllib3-level retries (ours are typed), the
        TLS options, the proxies, and no environment lookups (``trust_env = False`` also ignores
        ~/.netrc and REQUESTS_CA_BUNDLE). ``mounted``: a session whose adapters (and so their
        connection pools) to keep, e.g. one routed to a test double."""
        session = VaultSession(self)
        if mounted is not None:
            for prefix, adapter in mounted.adapters.items():
                session.mount(prefix, adapter)
        else:
            adapter = HTTPAdapter(pool_connections=self.pool_size, pool_maxsize=self.pool_size, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        session.verify = self.verify
        session.cert = self.client_cert
        session.proxies = dict(self.proxies)
        session.trust_env = False
        return session

    def hvac_client(self, session: requests.Session | None = None) -> Any:
        """An ``hvac.Client`` without a token (the token manager sets it) over ``session()``;
        hvac's own token sources (VAULT_TOKEN, ~/.vault-token) are deliberately not consulted."""
        return hvac.Client(
            url=self.address,
            token="",
            namespace=self.namespace,
            timeout=self.timeout,
            verify=self.verify,
            cert=self.client_cert,
            session=self.session(session),
            adapter=StatusAwareAdapter,
        )

    def lean_transport(self) -> VaultTransport:
        """The per-secret reads' keep-alive transport (``vault_http``), same TLS, proxies and pool."""
        return build_vault_http(
            self.address,
            timeout=self.timeout,
            verify=self.verify,
            client_cert=self.client_cert,
            pool_size=self.pool_size,
            proxies=self.proxies,
        )

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS settings as an ``SSLContext`` (None for a plain-http address)."""
        if not self.address.lower().startswith("https://"):
            return None
        return tls_context(self.verify, self.client_cert)


@functools.cache
def _same_origin_connect() -> Any:
    """websockets' client class, following redirects only within the origin it was given (17.x,
    the pinned version, is a class with ``process_redirect``; None where ``connect`` is not one)."""
    if not isinstance(_ws_connect, type) or not hasattr(_ws_connect, "process_redirect"):
        return None

    class SameOriginConnect(_ws_connect):  # type: ignore[misc, valid-type]
        def process_redirect(self, exc: Exception) -> Exception | str:
            result: Exception | str = super().process_redirect(exc)
            if isinstance(result, str) and origin(result) != origin(str(self.uri)):
                return SecurityError(f"cross-origin redirect to {origin_text(result)} refused")
            return result

    return SameOriginConnect


def websocket_connect(url: str, **kwargs: Any) -> ClientConnection:
    """``websockets.sync.client.connect`` that refuses cross-origin redirects (the token header
    would go along: websockets drops only ``Authorization``, ``Cookie`` and ``Proxy-Authorization``)."""
    factory = _same_origin_connect()
    connection: ClientConnection = factory(url, **kwargs).connect() if factory else _ws_connect(url, **kwargs)
    return connection


def vault_http_for(client: Any) -> VaultTransport:
    """The lean transport of an ``hvac.Client``: from the ``VaultConnection`` its session was built
    from, or, for a bare client, from its URL and session's public TLS settings and proxies."""
    session = getattr(client, "session", None)
    if isinstance(session, VaultSession) and session.connection is not None:
        return session.connection.lean_transport()
    verify = getattr(session, "verify", True)
    cert = getattr(session, "cert", None)
    return VaultConnection(
        str(client.url),
        verify=verify if isinstance(verify, bool | str) else True,
        client_cert=(str(cert[0]), str(cert[1])) if isinstance(cert, tuple | list) else None,
        proxies=dict(getattr(session, "proxies", None) or {}),
    ).lean_transport()


__all__ = [
    "REDIRECT_STATUSES",
    "RedirectRefused",
    "VaultConnection",
    "VaultSession",
    "redirect_target",
    "vault_http_for",
    "websocket_connect",
]
