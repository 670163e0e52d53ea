"""The lean HTTP path of the Vault reader: keep-alive GETs without hvac and requests.

The per-secret reads (KV v2 metadata, one KV v2 version, KV v1 data) are almost all syncd does in
an unchanged world, so they skip hvac/requests (request preparation, cookie and proxy merging,
adapters: ~5x the cost of the HTTP itself, bench/README.md) and go through ``PooledHttp``: stdlib
``http.client`` connections kept alive in a LIFO pool. It was picked by measurement
(``bench/vault_clients.py``): at 10,000 secrets and 8 threads it costs about what one
``http.client`` connection per thread costs, where urllib3's ``HTTPConnectionPool`` costs ~1.5x and
``PoolManager`` ~1.8x that, httpx ~4x, requests/hvac ~4-6x.

``PooledHttp`` keeps the behaviour of the hvac session it replaces for these reads: the base URL
(with any path prefix), TLS (a CA bundle file or directory, certifi's bundle like requests when
verification is on without one, a client certificate, or no verification), the timeout of every
connect and read (clipped, like every call of a cycle, to the time the cycle has left:
``syncd.deadlines``), and a pool sized like the session's. A connection Vault closed while idle is
replaced once, transparently (GETs are idempotent). When a proxy applies to the Vault address
(``HTTPS_PROXY``/``NO_PROXY``, resolved once like ``build_hvac_client`` does), ``ProxiedHttp``
sends the reads through urllib3's ``ProxyManager`` instead.

A transport answers ``get(target, headers)`` with an ``HttpReply`` (any status) and raises only
``VaultTransportError`` (``kind`` "timeout" or "connection"), whose text names the failure's type,
never a header (the token) or a body, or ``RedirectRefused``. Redirects are followed as every Vault
transport follows them (``syncd.clients.vault_redirects``): one 301/302/307, never ``https`` ->
``http``, another origin only for a standby's redirect (same path and query), on a connection of
its own. The transports are built by ``syncd.clients.vault_connection``.
"""

from __future__ import annotations

import http.client
import os
import ssl
import threading
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, Protocol
from urllib.parse import urlsplit

import certifi
import urllib3

from syncd.clients.vault_redirects import origin, redirect_target
from syncd.deadlines import attempt_timeout

TransportFailure = Literal["timeout", "connection"]


class HeaderLookup(Protocol):
    def get(self, name: str, /) -> Any: ...


class HttpReply(NamedTuple):
    status: int
    headers: HeaderLookup  # case-insensitive ``get``
    body: bytes


class VaultTransportError(Exception):
    """The request got no HTTP answer: it timed out or the connection failed."""

    def __init__(self, kind: TransportFailure, cause: str) -> None:
        self.kind = kind
        self.cause = cause  # the type name of what went wrong, e.g. "ConnectionRefusedError"
        super().__init__(f"{kind} ({cause})")


class VaultTransport(Protocol):
    @property
    def base_url(self) -> str: ...

    def get(self, target: str, headers: Mapping[str, str]) -> HttpReply:
        """``GET`` of ``target`` (path and query, from ``/v1/``) relative to the base URL."""
        ...

    def close(self) -> None: ...


def tls_context(verify: bool | str, client_cert: tuple[str, str] | None) -> ssl.SSLContext:
    """The TLS settings of the hvac session as an ``SSLContext``: ``verify`` is True (certifi's
    bundle, as requests uses), False (no verification) or a CA bundle file or directory."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif verify is True:
        context = ssl.create_default_context(cafile=certifi.where())  # requests' own default bundle
    elif os.path.isdir(verify):
        context = ssl.create_default_context(capath=verify)
    else:
        context = ssl.create_default_context(cafile=verify)
    if client_cert is not None:
        context.load_cert_chain(client_cert[0], client_cert[1])
    return context


class PooledHttp:
    """Keep-alive ``http.client`` connections to one Vault, at most ``pool_size`` kept idle (LIFO).

    More concurrent callers than ``pool_size`` get extra connections, closed after use (like
    urllib3's non-blocking pool). ``ssl_context`` is built lazily from ``verify``/``client_cert``
    when not given, so a missing CA file fails the first request (as with requests), not startup.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float,
        pool_size: int = 10,
        verify: bool | str = True,
        client_cert: tuple[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Vault address {address!r} is not an http(s) URL")
        self.base_url = address.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._pool_size = max(1, pool_size)
        self._verify = verify
        self._client_cert = client_cert
        self._context = ssl_context
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"PooledHttp({self.base_url!r}, pool_size={self._pool_size})"

    def get(self, target: str, headers: Mapping[str, str]) -> HttpReply:
        reply = self._get_pooled(target, headers)
        location = redirect_target(reply.status, self.base_url + target, reply.headers.get("Location"))
        if location is None:
            return reply
        if origin(location) == origin(self.base_url):
            parts = urlsplit(location)
            return self._get_pooled(
                parts.path[len(self._prefix) :] + (f"?{parts.query}" if parts.query else ""), headers
            )
        return self._get_elsewhere(location, headers)  # a standby's redirect to the active node

    def _get_pooled(self, target: str, headers: Mapping[str, str]) -> HttpReply:
        timeout = attempt_timeout(self._timeout, f"Vault GET {target}")  # clipped to the cycle's time left
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        reused = conn is not None
        failure: VaultTransportError | None = None
        try:
            if conn is None:
                conn = self._connect(timeout)
            else:
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
            try:
                reply = self._exchange(conn, self._prefix + target, headers)
            except (ConnectionError, http.client.BadStatusLine):
                if not reused:
                    raise
                # Vault closed the idle connection before our request arrived: one fresh try.
                conn.close()
                reply = self._exchange(conn, self._prefix + target, headers)
        except TimeoutError as exc:  # socket.timeout
            failure = VaultTransportError("timeout", type(exc).__name__)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            failure = VaultTransportError("connection", type(exc).__name__)
        if failure is not None or conn is None:
            if conn is not None:
                conn.close()
            raise failure or VaultTransportError("connection", "NoConnection")  # not chained
        self._release(conn)
        return reply

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- internals --------------------------------------------------------------------------

    def _get_elsewhere(self, url: str, headers: Mapping[str, str]) -> HttpReply:
        """One GET of an absolute URL on a connection of its own (closed after), same TLS."""
        parts = urlsplit(url)
        timeout = attempt_timeout(self._timeout, "Vault GET after a redirect")
        https = parts.scheme == "https"
        conn: http.client.HTTPConnection
        try:
            if https:
                if self._context is None:
                    self._context = tls_context(self._verify, self._client_cert)
                conn = http.client.HTTPSConnection(
                    parts.hostname or "", parts.port, timeout=timeout, context=self._context
                )
            else:
                conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
            try:
                return self._exchange(conn, parts.path + (f"?{parts.query}" if parts.query else ""), headers)
            finally:
                conn.close()
        except TimeoutError as exc:
            raise VaultTransportError("timeout", type(exc).__name__) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise VaultTransportError("connection", type(exc).__name__) from None

    @staticmethod
    def _exchange(conn: http.client.HTTPConnection, target: str, headers: Mapping[str, str]) -> HttpReply:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return HttpReply(response.status, response.msg, body)

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if not self._https:
            return http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        if self._context is None:
            self._context = tls_context(self._verify, self._client_cert)
        return http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._context)

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._pool_size:
                self._idle.append(conn)
                return
        conn.close()


class ProxiedHttp:
    """The same reads through urllib3's ``ProxyManager`` (used when a proxy applies to Vault)."""

    def __init__(
        self,
        address: str,
        proxy: str,
        *,
        timeout: float,
        pool_size: int = 10,
        verify: bool | str = True,
        client_cert: tuple[str, str] | None = None,
    ) -> None:
        self.base_url = address.rstrip("/")
        self._proxy = proxy
        self._timeout = timeout
        self._pool_size = pool_size
        self._verify = verify
        self._client_cert = client_cert
        self._manager: urllib3.ProxyManager | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ProxiedHttp({self.base_url!r})"

    def get(self, target: str, headers: Mapping[str, str]) -> HttpReply:
        reply = self._get_url(self.base_url + target, headers)
        location = redirect_target(reply.status, self.base_url + target, reply.headers.get("Location"))
        return reply if location is None else self._get_url(location, headers)

    def _get_url(self, url: str, headers: Mapping[str, str]) -> HttpReply:
        failure: VaultTransportError | None = None
        timeout = attempt_timeout(self._timeout, "Vault GET")
        try:
            response = self._pool().request(
                "GET",
                url,
                headers=dict(headers),
                retries=False,
                redirect=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
            )
        except urllib3.exceptions.NewConnectionError as exc:
            failure = VaultTransportError("connection", type(exc).__name__)
        except urllib3.exceptions.TimeoutError as exc:
            failure = VaultTransportError("timeout", type(exc).__name__)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            failure = VaultTransportError("connection", type(exc).__name__)
        if failure is not None:
            raise failure
        return HttpReply(response.status, response.headers, response.data)

    def close(self) -> None:
        with self._lock:
            manager, self._manager = self._manager, None
        if manager is not None:
            manager.clear()

    def _pool(self) -> urllib3.ProxyManager:
        with self._lock:
            if self._manager is None:
                context = tls_context(self._verify, self._client_cert)
                self._manager = urllib3.ProxyManager(
                    self._proxy,
                    maxsize=self._pool_size,
                    timeout=urllib3.Timeout(connect=self._timeout, read=self._timeout),
                    ssl_context=context,
                    cert_reqs=context.verify_mode,
                    assert_hostname=False if not context.check_hostname else None,
                )
            return self._manager


def build_vault_http(
    address: str,
    *,
    timeout: float,
    verify: bool | str,
    client_cert: tuple[str, str] | None,
    pool_size: int,
    proxies: Mapping[str, str] | None = None,
) -> VaultTransport:
    """The transport for ``address``: ``ProxiedHttp`` when ``proxies`` (requests' scheme -> proxy
    URL, already filtered by ``NO_PROXY``) has one for its scheme, else ``PooledHttp``."""
    scheme = urlsplit(address).scheme
    proxy = (proxies or {}).get(scheme) or (proxies or {}).get("all")
    if proxy:
        return ProxiedHttp(address, proxy, timeout=timeout, pool_size=pool_size, verify=verify, client_cert=client_cert)
    return PooledHttp(address, timeout=timeout, pool_size=pool_size, verify=verify, client_cert=client_cert)


__all__ = [
    "HttpReply",
    "PooledHttp",
    "ProxiedHttp",
    "VaultTransport",
    "VaultTransportError",
    "build_vault_http",
    "tls_context",
]
