"""React at once to Vault writes: a TCP listener for Vault's ``socket`` audit device.

Vault Community Edition has no event stream, but every edition can stream its audit log:
``vault audit enable -path=syncd socket address=HOST:PORT socket_type=tcp`` makes each Vault node
dial ``HOST:PORT`` and write one JSON object per line for every request and response
(``{"time", "type": "request"|"response", "auth", "request": {"operation", "path", "namespace",
...}, "response", "error"}``; string values HMAC'd unless the device has ``log_raw``).

``AuditListener`` accepts those connections (several at once: each node of an HA cluster dials
its own), picks the successful writes (a ``"response"`` entry, operation ``create``, ``update``,
``patch`` or ``delete``, no ``error``) and calls ``on_write(path)`` with the request path, prefixed
with the namespace path when the entry names one (``"secret/data/app/db"``,
``"team/secret/data/app/db"``). Repeated writes of one path coalesce (see ``Debouncer``).
``paths_to_mappings`` says which mappings read the secret behind such a path.

This is a shortcut, not a source of truth: Vault drops socket entries when the connection breaks
(and blocks requests only when *every* device fails, which is why this device must run beside
another one, e.g. ``file``). Reconciliation is level-based and polling stays the safety net.
Only the path and operation of an entry are kept; nothing else from it is logged or stored.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from syncd.app.notify.dispatch import Debouncer, WriteDispatcher, report_connections
from syncd.config import Settings, VaultSource

log = structlog.get_logger("syncd.notify")

MAX_LINE_BYTES = 1 << 20  # Vault's entries are small; a bigger "line" is garbage or an attack
MAX_CONNECTIONS = 32
KEEPALIVE_IDLE_SECONDS = 60
WRITE_OPERATIONS = frozenset({"create", "update", "patch", "delete"})
KV2_WRITE_SEGMENTS = ("data", "metadata", "delete", "undelete", "destroy")


# -- entries and paths ---------------------------------------------------------------------------


def written_path(entry: Any) -> str | None:
    """The (namespace-qualified) path of a successful write, or None for anything else."""
    if not isinstance(entry, dict) or entry.get("type") != "response" or entry.get("error"):
        return None
    request = entry.get("request")
    if not isinstance(request, dict) or request.get("operation") not in WRITE_OPERATIONS:
        return None
    path = request.get("path")
    if not isinstance(path, str) or not path.strip("/"):
        return None
    path = path.strip("/")
    namespace = request.get("namespace")
    ns_path = namespace.get("path") if isinstance(namespace, dict) else None
    if isinstance(ns_path, str) and ns_path.strip("/"):
        return f"{ns_path.strip('/')}/{path}"
    return path


def _write_paths(source: VaultSource) -> set[str]:
    """Every request path that changes this secret (both KV forms when the version is auto); for a
    database static role, a rotation by hand or a change of the role (its scheduled rotations make
    no request: ``syncd.app.service.rotation_schedule`` looks after those)."""
    if not source.is_kv:
        return {f"{source.mount}/rotate-role/{source.role}", f"{source.mount}/static-roles/{source.role}"}
    paths: set[str] = set()
    if source.kv_version in ("auto", 2):
        paths.update(f"{source.mount}/{segment}/{source.path}" for segment in KV2_WRITE_SEGMENTS)
    if source.kv_version in ("auto", 1):
        paths.add(f"{source.mount}/{source.path}")
    return paths


def paths_to_mappings(settings: Settings, path: str) -> set[str]:
    """Names of the mappings that read the secret a write to ``path`` changed.

    ``path`` is a Vault request path as ``on_write`` gives it: KV v2
    ``{mount}/data|metadata|delete|undelete|destroy/{path}``, KV v1 ``{mount}/{path}`` (mounts may
    contain slashes). With ``vault.namespace`` set, only paths under that namespace count.
    """
    path = path.strip("/")
    namespace = (settings.vault.namespace or "").strip("/")
    if namespace:
        if not path.startswith(namespace + "/"):
            return set()
        path = path[len(namespace) + 1 :]
    return set(_index_of(settings).get(path, ()))


_index_lock = threading.Lock()
_index: tuple[Settings, dict[str, tuple[str, ...]]] | None = None


def _index_of(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Write path -> mapping names, built once per settings object (a reload brings a new one), so a
    burst of writes costs a lookup per path, not a scan of every mapping."""
    global _index  # noqa: PLW0603 - a one-entry cache
    with _index_lock:
        if _index is None or _index[0] is not settings:
            index: dict[str, list[str]] = {}
            for mapping in settings.mappings:
                for write_path in {p for source in mapping.sources for p in _write_paths(source)}:
                    index.setdefault(write_path, []).append(mapping.name)
            _index = (settings, {key: tuple(names) for key, names in index.items()})
        return _index[1]


# -- reading lines ---------------------------------------------------------------------------------


class LineReader:
    """Splits a byte stream into lines; a line longer than ``limit`` is dropped up to its newline."""

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self.limit = limit
        self.oversized = 0
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, chunk: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._take(chunk[start:end])
            if not self._skipping:
                lines.append(bytes(self._buffer))
            self._buffer.clear()
            self._skipping = False
            start = end + 1
        self._take(chunk[start:])
        return lines

    def rest(self) -> bytes:
        """What is left without a newline (at the end of the stream)."""
        rest = b"" if self._skipping else bytes(self._buffer)
        self._buffer.clear()
        self._skipping = False
        return rest

    def _take(self, piece: bytes) -> None:
        if self._skipping:
            return
        self._buffer += piece
        if len(self._buffer) > self.limit:
            self._buffer.clear()
            self._skipping = True
            self.oversized += 1


def parse_entry(line: bytes) -> Any:
    """The JSON object on a line (after any ``prefix`` option's text), or None when it is not one."""
    start = line.find(b"{")
    if start < 0:
        return None
    try:
        return json.loads(line[start:])
    except ValueError:  # also UnicodeDecodeError
        return None


# -- the listener ----------------------------------------------------------------------------------


def _keep_alive(conn: socket.socket) -> None:
    """TCP keep-alive probes after a minute of silence, so a Vault node that vanished without a FIN
    (a partition, a killed VM) shows as a closed connection within about two minutes instead of
    the kernel's default two hours: the sync mode then falls back to interval sweeps in time."""
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_SECONDS), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
        if hasattr(socket, name):  # Linux; elsewhere the kernel's defaults apply
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, option, value in options:
        with contextlib.suppress(OSError):
            conn.setsockopt(level, option, value)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    listener: AuditListener


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Connection(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.listener._serve(self.request, self.client_address)


class AuditListener:
    """A threaded TCP server for Vault's socket audit device; ``on_write(path)`` per written path."""

    def __init__(
        self,
        bind: str,
        port: int,
        on_write: Callable[[str], None],
        *,
        debounce_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_connections: int = MAX_CONNECTIONS,
        on_connections: Callable[[int], None] | None = None,
    ) -> None:
        self._bind = bind
        # Told the number of open connections after each open and close, under the connections
        # lock (so reports arrive in order): it must be quick and must not call back into here.
        self._on_connections = on_connections
        self._requested_port = port
        self._on_write = on_write
        self._max_line_bytes = max_line_bytes
        self._max_connections = max_connections
        self._dispatcher = WriteDispatcher(
            self._deliver,
            debounce_seconds=debounce_seconds,
            clock=clock,
            thread_name="syncd-audit-dispatch",
            logger_name="syncd.notify",
        )
        self._stopping = False
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Condition()  # guards _connections and _stopping
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self.entries = 0  # parsed entries
        self.writes = 0  # successful writes seen (before coalescing)
        self.skipped = 0  # lines that were not JSON objects

    @property
    def port(self) -> int:
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def connections(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    def start(self) -> AuditListener:
        server_class = _Server6 if ":" in self._bind else _Server
        server = server_class((self._bind, self._requested_port), _Connection)
        server.listener = self
        self._server = server
        self._threads = [
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="syncd-audit-accept"),
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()
        self._dispatcher.start()
        log.info("vault audit listener started", bind=self._bind, port=self.port)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, drop what waits for delivery."""
        with self._connections_lock:
            if self._stopping:
                return
            self._stopping = True
        self._dispatcher.stop()
        if self._server is not None:
            self._server.shutdown()
        with self._connections_lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._server is not None:
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout)
        self._dispatcher.join(timeout)
        # Connection threads are daemons nobody joins: wait for them to finish (and report 0
        # connections) so nothing of this listener runs or logs after stop() returns.
        with self._connections_lock:
            self._connections_lock.wait_for(lambda: not self._connections, timeout)
        log.info("vault audit listener stopped", port=self.port)

    def __enter__(self) -> AuditListener:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- connections ---------------------------------------------------------------------------

    def _serve(self, conn: socket.socket, peer: Any) -> None:
        with self._connections_lock:
            if self._stopping or len(self._connections) >= self._max_connections:
                log.warning("vault audit connection refused", peer=str(peer), open=len(self._connections))
                return
            self._connections.add(conn)
            self._report_connections()
        _keep_alive(conn)
        log.info("vault audit connection opened", peer=str(peer))
        reader = LineReader(self._max_line_bytes)
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                for line in reader.feed(chunk):
                    self._line(line)
            if rest := reader.rest():
                self._line(rest)
        except OSError as exc:
            log.info("vault audit connection broken", peer=str(peer), error=type(exc).__name__)
        finally:
            if reader.oversized:
                log.warning("vault audit lines over the size limit dropped", count=reader.oversized)
            log.info("vault audit connection closed", peer=str(peer))
            with self._connections_lock:  # last: stop() waits for this
                self._connections.discard(conn)
                self._report_connections()
                self._connections_lock.notify_all()

    def _report_connections(self) -> None:
        """Call with ``_connections_lock`` held, so the counts arrive in order."""
        report_connections(self._on_connections, len(self._connections), "vault audit")

    def _line(self, line: bytes) -> None:
        """One complete line from a connection (tests may override to watch the raw bytes)."""
        if not line.strip():
            return
        entry = parse_entry(line)
        if not isinstance(entry, dict):
            self.skipped += 1
            log.debug("vault audit line skipped: not a JSON object", length=len(line))
            return
        self.entries += 1
        path = written_path(entry)
        if path is None:
            return
        self.writes += 1
        operation = entry["request"]["operation"]
        log.debug("vault write noticed", path=path, operation=operation)
        self._dispatcher.add(path)

    def _deliver(self, path: str) -> None:
        self._on_write(path)  # looked up at each delivery: a test may swap the handler


__all__ = ["AuditListener", "Debouncer", "LineReader", "parse_entry", "paths_to_mappings", "written_path"]
