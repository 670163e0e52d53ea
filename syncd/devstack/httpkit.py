"""The small HTTP toolkit both emulators are built on.

A threaded stdlib server (any verb, including Vault's ``LIST``), regex routing, a request log,
fault injection and a settable clock, plus the admin routes every emulator shares:

- ``GET|DELETE /__devstack/requests``: the request log / clear it. Each entry: ``method``, ``path``,
  ``status``, ``time`` (when it was logged), ``start`` (the request was read) and ``end`` (the
  answer was ready), wall-clock seconds, so tests can check that two requests never overlapped.
- ``POST|DELETE /__devstack/faults``: inject faults for the next N matching requests / clear them.
  Body: ``{"method": "PUT"|"*", "path": "/v1/secret/*" (fnmatch glob on the path, no query),
  "status": 503, "body": {...}|"text"?, "headers": {...}?, "retry_after": 2?, "latency": 0.5?,
  "drop": false, "count": 1}``. With ``status`` absent and ``latency`` set, the request is delayed
  and then served normally. ``drop`` closes the connection without an answer.
- ``GET /__devstack/clock``, ``POST /__devstack/clock {"advance": seconds}``: the emulator's clock,
  which drives token expiry, rate-limit windows and delete_version_after.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ADMIN_PREFIX = "/__devstack"


class Clock:
    """Wall-clock time plus an offset that tests can advance (never moves backwards)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the matched route

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """The body as JSON; an empty body is ``None``. Raises ``ValueError`` when malformed."""
        if not self.body.strip():
            return None
        return json.loads(self.body)


# Takes over the connection after a ``101 Switching Protocols`` answer (the socket and the
# request's buffered reader); the connection closes when it returns.
Upgrade = Callable[[socket.socket, io.BufferedIOBase], None]


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    upgrade: Upgrade | None = field(default=None, repr=False)  # only with status 101

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        all_headers = {"Content-Type": "application/json"}
        all_headers.update(headers or {})
        return cls(status, json.dumps(payload).encode(), all_headers)

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))


Handler = Callable[[Request], Response]


class Router:
    """Routes (method, path regex) to handlers; the regex's named groups become ``Request.params``."""

    def __init__(self) -> None:
        self._routes: list[tuple[frozenset[str], re.Pattern[str], Handler]] = []

    def add(self, methods: Iterable[str], pattern: str, handler: Handler) -> None:
        self._routes.append((frozenset(m.upper() for m in methods), re.compile(pattern + r"\Z"), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | bool | None:
        """The handler and params; ``False``: known path, other verb; ``None``: unknown path."""
        path_known = False
        for methods, pattern, handler in self._routes:
            match = pattern.match(path)
            if match is None:
                continue
            if method in methods:
                return handler, {k: v for k, v in match.groupdict().items() if v is not None}
            path_known = True
        return False if path_known else None


@dataclass
class Fault:
    method: str
    path: str
    count: int
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: int | None = None
    latency: float = 0.0
    drop: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and fnmatch.fnmatchcase(path, self.path)


class _DropConnection(Exception):
    """Raised by fault injection to close the socket without answering."""


# Public name for emulators whose ``before`` hook closes a connection without answering.
DropConnection = _DropConnection


class EmulatorState:
    """What the shared admin routes need: the request log, the faults, the clock."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.count > 0 and fault.matches(method, path):
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def log(
        self, method: str, path: str, status: int, start: float | None = None, user_agent: str | None = None
    ) -> None:
        end = time.time()
        entry = {"method": method, "path": path, "status": status, "time": end, "start": start or end, "end": end}
        entry["user_agent"] = user_agent  # who called: syncd names its replica there
        with self.lock:
            self.requests.append(entry)


def _fault_from_json(payload: Any) -> Fault:
    if not isinstance(payload, dict):
        raise ValueError("fault must be a JSON object")
    return Fault(
        method=str(payload.get("method", "*")).upper(),
        path=str(payload["path"]),
        count=int(payload.get("count", 1)),
        status=int(payload["status"]) if payload.get("status") is not None else None,
        body=payload.get("body"),
        headers={str(k): str(v) for k, v in (payload.get("headers") or {}).items()},
        retry_after=int(payload["retry_after"]) if payload.get("retry_after") is not None else None,
        latency=float(payload.get("latency", 0.0)),
        drop=bool(payload.get("drop", False)),
    )


def add_admin_routes(router: Router, state: EmulatorState) -> None:
    def list_requests(_: Request) -> Response:
        with state.lock:
            return Response.json(200, {"requests": list(state.requests)})

    def clear_requests(_: Request) -> Response:
        with state.lock:
            state.requests.clear()
        return Response.empty()

    def add_faults(request: Request) -> Response:
        try:
            payload = request.json()
            items = payload if isinstance(payload, list) else [payload]
            faults = [_fault_from_json(item) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            return Response.json(400, {"error": f"bad fault: {exc}"})
        with state.lock:
            state.faults.extend(faults)
        return Response.json(201, {"faults": len(faults)})

    def clear_faults(_: Request) -> Response:
        with state.lock:
            state.faults.clear()
        return Response.empty()

    def get_clock(_: Request) -> Response:
        return Response.json(200, {"now": state.clock.now()})

    def advance_clock(request: Request) -> Response:
        try:
            state.clock.advance(float((request.json() or {})["advance"]))
        except (ValueError, KeyError, TypeError) as exc:
            return Response.json(400, {"error": f"bad clock change: {exc}"})
        return Response.json(200, {"now": state.clock.now()})

    router.add(["GET"], ADMIN_PREFIX + "/requests", list_requests)
    router.add(["DELETE"], ADMIN_PREFIX + "/requests", clear_requests)
    router.add(["POST"], ADMIN_PREFIX + "/faults", add_faults)
    router.add(["DELETE"], ADMIN_PREFIX + "/faults", clear_faults)
    router.add(["GET"], ADMIN_PREFIX + "/clock", get_clock)
    router.add(["POST"], ADMIN_PREFIX + "/clock", advance_clock)


class _ListeningServer(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: more simultaneous connects than that are reset
    # by the kernel, which loses writes when many client threads start at once.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request (a test's dropped connection, a killed benchmark) is
        # normal here; anything else is an emulator bug and keeps socketserver's traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class EmulatorServer:
    """Serves one emulator on a background thread. ``port=0`` picks a free port.

    ``not_found`` and ``method_not_allowed`` build the emulator-specific answers for unknown
    paths and verbs; ``before`` may answer a request before routing (auth, rate limit, seal).
    """

    def __init__(
        self,
        router: Router,
        state: EmulatorState,
        *,
        not_found: Handler,
        method_not_allowed: Handler,
        before: Callable[[Request], Response | None] | None = None,
        after: Callable[[Request, Response], None] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.router = router
        self.state = state
        add_admin_routes(router, state)
        handler_class = _make_handler(self, not_found, method_not_allowed, before, after)
        self._server = _ListeningServer((host, port), handler_class)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}"

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"emulator-{self.port}"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _fault_response(fault: Fault) -> Response:
    headers = dict(fault.headers)
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    if isinstance(fault.body, str):
        headers.setdefault("Content-Type", "text/plain")
        return Response(fault.status or 500, fault.body.encode(), headers)
    if fault.body is None:
        return Response(fault.status or 500, b"", headers)
    return Response.json(fault.status or 500, fault.body, headers)


def _make_handler(
    server: EmulatorServer,
    not_found: Handler,
    method_not_allowed: Handler,
    before: Callable[[Request], Response | None] | None,
    after: Callable[[Request, Response], None] | None,
) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Nagle + the client's delayed ACK would stall every keep-alive response by ~40 ms.
        disable_nagle_algorithm = True
        server_version = "syncd-devstack"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log replaces stderr noise

        def __getattr__(self, name: str) -> Any:
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

        def _handle(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            started = time.time()
            request = Request(
                method=self.command.upper(),
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            try:
                response = self._respond(request)
            except _DropConnection:
                server.state.log(request.method, request.path, 0, started, request.header("user-agent"))
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if not request.path.startswith(ADMIN_PREFIX):
                server.state.log(request.method, request.path, response.status, started, request.header("user-agent"))
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if response.status == 101 and response.upgrade is not None:
                self.end_headers()
                self.close_connection = True
                response.upgrade(self.connection, self.rfile)
                return
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if request.method != "HEAD":
                self.wfile.write(response.body)

        def _respond(self, request: Request) -> Response:
            if request.path.startswith(ADMIN_PREFIX):
                return self._route(request)
            fault = server.state.take_fault(request.method, request.path)
            if fault is not None:
                if fault.latency:
                    time.sleep(fault.latency)
                if fault.drop:
                    raise _DropConnection
                if fault.status is not None:
                    return _fault_response(fault)
            if before is not None:
                early = before(request)
                if early is not None:
                    return early
            response = self._route(request)
            if after is not None:
                after(request, response)
            return response

        def _route(self, request: Request) -> Response:
            resolved = server.router.resolve(request.method, request.path)
            if resolved is None:
                return not_found(request)
            if resolved is False:
                return method_not_allowed(request)
            assert not isinstance(resolved, bool)
            handler, params = resolved
            return handler(Request(request.method, request.path, request.query, request.headers, request.body, params))

    return _Handler
