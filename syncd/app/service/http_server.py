"""The operations HTTP endpoint: metrics, probes, status and the manual trigger.

One ``GuardedHTTPServer`` (``http_guard``: the stdlib's server with connection slots, one deadline
per request, a total header limit and structured error logs) on a background thread serves:

    GET  /metrics              Prometheus text exposition
    GET  /healthz              liveness, 200 or 503 with a JSON body
    GET  /readyz               readiness, 200 or 503 with a JSON body
    GET  /status               200, JSON per mapping (never a value); reduced, see below
    POST /trigger[?mapping=M]  run a reconciliation now; 202 when accepted

``/trigger`` is disabled unless a trigger token is configured: it then answers 403 with a JSON
reason (403 rather than 404 so that an operator sees why, not a typo hunt). With a token it
needs ``Authorization: Bearer <token>`` (compared in constant time; the token is read at every
request, so a rotated file applies at once) and answers 401 with ``WWW-Authenticate: Bearer``
otherwise, logged at warning at most once a minute per peer (``ThrottledLog``). Unknown paths are
404, a known path with the wrong method 405 with ``Allow``.

``/status`` on a public port: the full document names paths, scripts, account ids, errors and the
sync mode's connections, so when the server binds anything but a loopback address it is served only
to the trigger token's bearer; others get ``reduced_status`` (health, readiness, the sync mode,
counts of mappings), enough for a dashboard or a health check. Without a trigger token configured
the full document is then not served over HTTP at all: ``syncd status`` reads it from the state.

Access lines go to structlog at debug level, not to stderr. Errors raised by the status source
answer 500/503 with the error's class name only.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
import threading
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, urlsplit

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

from syncd.app.service.heap import release_free_memory
from syncd.app.service.http_guard import (
    MAX_CONNECTIONS,
    MAX_HEADER_BYTES,
    REQUEST_DEADLINE_SECONDS,
    GuardedHandler,
    GuardedHTTPServer,
)
from syncd.app.service.metrics import Metrics
from syncd.app.throttle import ThrottledLog
from syncd.model import SecretValue

__all__ = ["OpsServer", "StatusSource"]

log = structlog.get_logger(__name__)

_JSON: Final = "application/json"
_MAX_BODY: Final = 64 * 1024
_SHUTDOWN_POLL: Final = 0.05  # seconds; how quickly stop() is noticed by the serving loop
_ROUTES: Final[dict[str, frozenset[str]]] = {
    "/metrics": frozenset({"GET", "HEAD"}),
    "/healthz": frozenset({"GET", "HEAD"}),
    "/readyz": frozenset({"GET", "HEAD"}),
    "/status": frozenset({"GET", "HEAD"}),
    "/trigger": frozenset({"POST"}),
}


class StatusSource(Protocol):
    def healthz(self) -> tuple[bool, dict[str, Any]]:
        """Liveness: no cycle abandoned past its deadline, and one finished within a bound."""
        ...

    def readyz(self) -> tuple[bool, dict[str, Any]]:
        """Readiness: the start-up cycle ran, the Vault token is valid, not shutting down."""
        ...

    def status(self) -> dict[str, Any]:
        """Per-mapping state as JSON-able data, no values."""
        ...

    def trigger(self, mapping: str | None) -> tuple[int, dict[str, Any]]:
        """Run (or queue) a reconciliation; returns the HTTP status and body. Unknown mapping: 404."""
        ...


class OpsServer:
    """The HTTP endpoint on its own thread. ``port=0`` binds a free port; see ``.port``/``.url``."""

    def __init__(
        self,
        source: StatusSource,
        metrics: Metrics,
        *,
        bind: str,
        port: int,
        trigger_token: Callable[[], SecretValue] | None,
        status_needs_token: bool | None = None,
        max_connections: int = MAX_CONNECTIONS,
        request_deadline: float = REQUEST_DEADLINE_SECONDS,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        """``status_needs_token``: serve the full ``/status`` only to the trigger token's bearer (the
        reduced one to others); None decides by the bind address: needed unless it is loopback."""
        self.source = source
        self.metrics = metrics
        self.trigger_token = trigger_token
        self.status_needs_token = not _is_loopback(bind) if status_needs_token is None else status_needs_token
        self.unauthorized = ThrottledLog(log.warning, 60.0)
        self._limits = {
            "request_deadline": request_deadline,
            "max_header_bytes": max_header_bytes,
            "max_body_bytes": _MAX_BODY,
        }
        self._max_connections = max_connections
        self._bind = bind
        self._requested_port = port
        self._server: GuardedHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._bind
        if host in ("", "0.0.0.0"):  # noqa: S104 - naming the wildcard, not binding it
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> OpsServer:
        if self._server is not None:
            raise RuntimeError("the server is already started")
        family = _IPv6Server if ":" in self._bind else _IPv4Server
        handler = type("BoundOpsHandler", (_OpsHandler,), {"ops": self, **self._limits})
        server_class: type[GuardedHTTPServer] = type(
            "BoundOpsServer", (family,), {"max_connections": self._max_connections}
        )
        try:
            self._server = server_class((self._bind, self._requested_port), handler)
        except OSError as exc:  # "Address already in use" alone does not say which address
            raise OSError(exc.errno, f"{exc.strerror or exc}: ops server {self._bind}:{self._requested_port}") from exc
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL},
            name="syncd-ops-http",
            daemon=True,
        )
        self._thread.start()
        log.info("ops server listening", url=self.url)
        return self

    def stop(self) -> None:
        """Stop accepting, close the socket and wait for the serving thread. Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)
        self._server = self._thread = None
        log.info("ops server stopped")

    def __enter__(self) -> OpsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _IPv4Server(GuardedHTTPServer):
    pass


class _IPv6Server(_IPv4Server):
    address_family = socket.AF_INET6


class _OpsHandler(GuardedHandler):
    ops: OpsServer  # set on the per-server subclass
    server_version = "syncd"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server names them
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802 - http.server names them
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802 - http.server names them
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802 - http.server names them
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802 - http.server names them
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802 - http.server names them
        self._dispatch("DELETE")

    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server names them
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        self.head_received()
        parts = urlsplit(self.path)
        allowed = _ROUTES.get(parts.path)
        if not self._drain_body():
            return
        if allowed is None:
            self._send_json(404, {"error": "not found", "path": parts.path})
            return
        if method not in allowed:
            self._send_json(405, {"error": "method not allowed"}, {"Allow": ", ".join(sorted(allowed))})
            return
        try:
            if parts.path == "/trigger":
                self._trigger(parts.query)
            else:
                self._get(parts.path)
        except Exception as exc:
            log.error("ops endpoint failed", path=parts.path, error_code=type(exc).__name__)
            self._send_json(500, {"error": "internal error", "error_code": type(exc).__name__})

    def _get(self, path: str) -> None:
        source = self.ops.source
        if path == "/metrics":
            chunks, headers = self.ops.metrics.exposition(), {"Vary": "Accept-Encoding"}
            if _accepts_gzip(self.headers.get("Accept-Encoding")):
                # What Prometheus asks for: the body is gathered compressed (~1/10 of the text)
                body, headers["Content-Encoding"] = _gzipped(chunks), "gzip"
            else:
                body = list(chunks)
            self._send(200, body, CONTENT_TYPE_LATEST, headers)
            del body
            release_free_memory()  # an exposition of 10,000 mappings is MiBs of short-lived chunks
        elif path == "/healthz":
            self._probe(source.healthz)
        elif path == "/readyz":
            self._probe(source.readyz)
        elif self.ops.status_needs_token and not self._bearer_ok():
            self._send_json(200, reduced_status(source))
        else:
            self._send_json(200, source.status())

    def _probe(self, probe: Callable[[], tuple[bool, dict[str, Any]]]) -> None:
        try:
            ok, body = probe()
        except Exception as exc:
            log.error("probe failed", path=self.path, error_code=type(exc).__name__)
            ok, body = False, {"status": "error", "error_code": type(exc).__name__}
        self._send_json(200 if ok else 503, body)

    def _trigger(self, query: str) -> None:
        token_source = self.ops.trigger_token
        if token_source is None:
            self._send_json(403, {"error": "trigger disabled", "reason": "no server.trigger_token is configured"})
            return
        if not self._bearer_ok():
            challenge = {"WWW-Authenticate": 'Bearer realm="syncd"'}
            peer = str(self.client_address[0]) if self.client_address else "?"
            self.ops.unauthorized("ops request unauthorized", key=peer, path="/trigger", peer=peer)
            self._send_json(401, {"error": "unauthorized", "reason": "a valid bearer token is required"}, challenge)
            return
        names = parse_qs(query, keep_blank_values=True).get("mapping")
        if names is not None and (len(names) != 1 or not names[0]):
            self._send_json(400, {"error": "bad request", "reason": "give at most one non-empty mapping"})
            return
        mapping = names[0] if names else None
        status, body = self.ops.source.trigger(mapping)
        log.info("manual trigger", mapping=mapping, status=status)
        self._send_json(status, body)

    def _bearer_ok(self) -> bool:
        token_source = self.ops.trigger_token
        if token_source is None:
            return False
        return _bearer_matches(self.headers.get("Authorization"), token_source())

    def _drain_body(self) -> bool:
        """Read (and ignore) a request body so the client never sees a reset; refuse huge ones."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY:
            self.close_connection = True
            self._send_json(413 if length > 0 else 400, {"error": "bad request body"})
            return False
        if length:
            self.rfile.read(length)
        return True

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body, default=str, sort_keys=True).encode()
        self._send(status, payload, _JSON, headers)

    def _send(
        self, status: int, payload: bytes | list[bytes], content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        """One response with a Content-Length; ``payload`` may be the body's chunks (written one by one)."""
        chunks = [payload] if isinstance(payload, bytes) else payload
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(sum(len(chunk) for chunk in chunks)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            for chunk in chunks:
                self.wfile.write(chunk)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("ops request", method=self.command, path=urlsplit(self.path).path, status=code)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ops server", detail=format % args)


def reduced_status(source: StatusSource) -> dict[str, Any]:
    """What ``/status`` tells a client without the trigger token: health, readiness, the sync mode
    and counts of mappings; no path, script, account, error text or connection count."""
    healthy, _ = source.healthz()
    ready, _ = source.readyz()
    full = source.status()
    mappings = full.get("mappings") or []
    failing = sum(1 for m in mappings if isinstance(m, dict) and m.get("last_error_code"))
    mode = full.get("sync_mode")
    return {
        "healthy": healthy,
        "ready": ready,
        "sync_mode": mode.get("mode") if isinstance(mode, dict) else None,
        "mappings": {
            "configured": len(full.get("mappings_configured") or []),
            "in_sync": sum(1 for m in mappings if isinstance(m, dict) and m.get("in_sync")),
            "failing": failing,
        },
        "detail": "reduced: present the trigger token (Authorization: Bearer) for the full document",
    }


def _is_loopback(bind: str) -> bool:
    try:
        return ipaddress.ip_address(bind.strip("[]")).is_loopback
    except ValueError:
        return bind == "localhost"


def _accepts_gzip(header: str | None) -> bool:
    """Whether ``Accept-Encoding`` lists gzip without ``q=0`` (RFC 9110 12.5.3)."""
    for item in (header or "").split(","):
        coding, *params = (part.strip().lower() for part in item.split(";"))
        if coding == "gzip":
            return all(_weight(param) != 0 for param in params)
    return False


def _weight(param: str) -> float | None:
    """The value of a ``q=`` parameter (None for any other parameter or a malformed weight)."""
    name, _, value = param.partition("=")
    if name.strip() != "q":
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _gzipped(chunks: Iterable[bytes]) -> list[bytes]:
    """``chunks`` as one gzip stream, compressed as they come (the text is never whole in memory)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip header and trailer
    body = [piece for piece in map(compressor.compress, chunks) if piece]
    body.append(compressor.flush())
    return body


def _bearer_matches(header: str | None, expected: SecretValue) -> bool:
    if not header:
        return False
    scheme, _, presented = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.reveal().encode())
