"""Hostile upstreams on loopback, for the hardening tests: what an attacker who controls a response
at the Vault address (a proxy, an ingress, a misconfigured standby) can make syncd see.

- ``EchoingProxy``: forwards every request to a real upstream (the Vault emulator), except those
  ``echo_when(method, path)`` picks, which get a 502 error page echoing the request's headers (a
  proxy's debug page: the token comes back in the body).
- ``Redirector``: answers every request with a redirect to ``location(path)`` and records what it
  received (so a test sees whether a token or a body came along).
- ``self_signed_tls``: a server-side ``SSLContext`` for 127.0.0.1 with a throwaway certificate
  (``tests/data/tls``), and its CA file for the client side.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

TLS_DIR = Path(__file__).parent / "data" / "tls"
TLS_CERT = TLS_DIR / "localhost.crt"  # self-signed, CN and SAN 127.0.0.1/localhost: also its own CA
TLS_KEY = TLS_DIR / "localhost.key"


def server_tls() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS_CERT, TLS_KEY)
    return context


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Server:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (TLS optional) with a handler function."""

    handle: Callable[[BaseHTTPRequestHandler, Received], None]
    tls: bool = False
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Self:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Received(self.command, self.path, dict(self.headers.items()), body)
                owner.received.append(seen)
                owner.handle(self, seen)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self.tls:
            server.socket = server_tls().wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def echo_page(received: Received) -> bytes:
    lines = "".join(f"{name}: {value}\n" for name, value in received.headers.items())
    page = f"<h1>502 Bad Gateway</h1><pre>{received.method} {received.path}\n{lines}</pre>"
    return f"<html><body>{page}</body></html>".encode()


class EchoingProxy(_Server):
    def __init__(self, upstream: str, echo_when: Callable[[str, str], bool]) -> None:
        super().__init__(self._handle)
        self.upstream = urlsplit(upstream)
        self.echo_when = echo_when

    def _handle(self, handler: BaseHTTPRequestHandler, received: Received) -> None:
        if self.echo_when(received.method, received.path):
            _reply(handler, 502, echo_page(received), {"Content-Type": "text/html"})
            return
        conn = http.client.HTTPConnection(self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=10)
        try:
            headers = {k: v for k, v in received.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(received.method, received.path, body=received.body or None, headers=headers)
            response = conn.getresponse()
            body = response.read()
            passed = {k: v for k, v in response.getheaders() if k.lower() in ("content-type", "retry-after")}
            _reply(handler, response.status, body, passed)
        finally:
            conn.close()


class Redirector(_Server):
    def __init__(self, location: Callable[[str], str], *, status: int = 307, tls: bool = False) -> None:
        super().__init__(self._handle, tls=tls)
        self.location = location
        self.status = status

    def _handle(self, handler: BaseHTTPRequestHandler, received: Received) -> None:
        _reply(handler, self.status, b"", {"Location": self.location(received.path)})


class Recorder(_Server):
    """Answers every request 200 with an empty JSON object and records it."""

    def __init__(self, *, tls: bool = False) -> None:
        super().__init__(self._handle, tls=tls)

    def _handle(self, handler: BaseHTTPRequestHandler, received: Received) -> None:
        _reply(handler, 200, b"{}", {"Content-Type": "application/json"})
