"""React at once to Vault writes: a TCP listener for Vault's ``socket`` audit device.

Vault Community Edition has no event stream, but every edition can stream its audit log:
``vault audit enable -path=syncd socket address=HOST:PORT socket_type=tcp`` makes each Vault node
dial ``HOST:PORT`` and write one JSON object per line for every request and response
(``{"time", "type": "request"|"response", "auth", "request": {"operation", "path", "namespace",
...}, "response", "error"}``; string values HMAC'd unless the device has ``log_raw``). Vault dials
when it has an entry to write (enabling the device sends a test entry at once), so a real node's
connection starts with an entry.

``AuditListener`` accepts those connections (several at once: each node of an HA cluster dials
its own), picks the successful writes (a ``"response"`` entry, operation ``create``, ``update``,
``patch`` or ``delete``, no ``error``) and calls ``on_write(path)`` with the request path, prefixed
with the namespace path when the entry names one (``"secret/data/app/db"``,
``"team/secret/data/app/db"``). Repeated writes of one path coalesce (see ``Debouncer``).
``paths_to_mappings`` says which mappings read the secret behind such a path.

**The port trusts nothing by itself** (anyone who can reach it can connect):

- A connection is **unverified** until it sent a valid audit entry (``is_audit_entry``); only
  verified connections count as "Vault connected" (``on_connections``). An unverified connection
  is closed after ``unverified_timeout`` seconds or ``MAX_UNVERIFIED_LINES`` lines without one.
- At most ``max_connections`` at once; when full, a new connection evicts the **oldest unverified**
  one (so silent sockets holding every slot cannot lock the real Vault out), and is refused only
  when every slot holds a verified connection.
- ``prefix`` (``[notifications] audit_prefix``): the shared secret of the device's ``prefix``
  option; lines that do not start with it are dropped before parsing. Without it a forged entry
  still verifies a connection, so set it (and a NetworkPolicy) where the port is reachable.
- ``allow``: peer networks (CIDR); a peer outside them is closed at once.
- Per connection: lines over ``max_line_bytes`` (64 KiB) are dropped up to their newline, and
  reading pauses when the peer sends more than ``bytes_per_second`` / ``lines_per_second`` (TCP
  then pushes back). A line that is not an entry (garbage, invalid UTF-8, nesting deep enough to
  exhaust the recursion limit) is counted and dropped, never raised: the connection goes on.
  What was dropped is logged once, when the connection closes; refusals and evictions are logged
  at most once a minute.

How often the sync mode may change with connections coming and going is the service's business
(``syncd.app.notify.flapping``). This is a shortcut, not a source of truth: Vault drops socket
entries when the connection breaks (and blocks requests only when *every* device fails, which is
why this device must run beside another one, e.g. ``file``). Reconciliation is level-based and
polling stays the safety net. Only the path and operation of an entry are kept; nothing else from
it is logged or stored.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from syncd.app.notify.audit_entries import (
    MAX_LINE_BYTES,
    LineReader,
    is_audit_entry,
    parse_entry,
    paths_to_mappings,
    strip_prefix,
    written_path,
)
from syncd.app.notify.dispatch import Debouncer, WriteDispatcher, report_connections
from syncd.app.throttle import ThrottledLog, TokenBucket

log = structlog.get_logger("syncd.notify")

MAX_CONNECTIONS = 32
UNVERIFIED_TIMEOUT_SECONDS = 10.0
MAX_UNVERIFIED_LINES = 16
BYTES_PER_SECOND = 4 * 1024 * 1024
LINES_PER_SECOND = 5000.0
KEEPALIVE_IDLE_SECONDS = 60
_RECV_BYTES = 16 * 1024

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(allow: Sequence[str]) -> tuple[Network, ...]:
    """CIDR texts (``10.0.0.0/8``, ``fd00::/8``, a single address) as networks."""
    return tuple(ipaddress.ip_network(text, strict=False) for text in allow)


def _peer_allowed(peer: Any, networks: tuple[Network, ...]) -> bool:
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except (ValueError, IndexError, TypeError):
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


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


@dataclass(eq=False)
class _Peer:
    sock: socket.socket
    peer: str
    opened_at: float
    verified: bool = False
    closed: bool = False  # evicted or stopping: its thread ends without reporting
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, what: str) -> None:
        self.dropped[what] = self.dropped.get(what, 0) + 1

    def shut(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    listener: AuditListener

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return self.listener._admit(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Never the stdlib's traceback on stderr: one structured line (the handler catches all anyway).
        log.warning("vault audit connection failed", peer=str(client_address))


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Connection(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.listener._serve(self.request)


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
        prefix: Callable[[], str] | str | None = None,
        allow: Sequence[str] = (),
        unverified_timeout: float = UNVERIFIED_TIMEOUT_SECONDS,
        bytes_per_second: float = BYTES_PER_SECOND,
        lines_per_second: float = LINES_PER_SECOND,
    ) -> None:
        self._bind = bind
        # Told the number of verified connections after each change, under the connections lock
        # (so reports arrive in order): it must be quick and must not call back into here.
        self._on_connections = on_connections
        self._requested_port = port
        self._on_write = on_write
        self._max_line_bytes = max_line_bytes
        self._max_connections = max(1, max_connections)
        self._prefix = prefix
        self._allow = parse_networks(allow)
        self._unverified_timeout = unverified_timeout
        self._bytes_per_second = bytes_per_second
        self._lines_per_second = lines_per_second
        self._clock = clock
        self._dispatcher = WriteDispatcher(
            self._deliver,
            debounce_seconds=debounce_seconds,
            clock=clock,
            thread_name="syncd-audit-dispatch",
            logger_name="syncd.notify",
        )
        self._throttled = ThrottledLog(log.warning, 60.0)
        self._stopping = False
        self._stopped = threading.Event()  # wakes reading pauses at stop()
        self._peers: dict[socket.socket, _Peer] = {}
        self._lock = threading.Condition()  # guards _peers and _stopping
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self.entries = 0  # parsed audit entries
        self.writes = 0  # successful writes seen (before coalescing)
        self.skipped = 0  # lines that were not audit entries (or lacked the prefix)
        self.evicted = 0  # unverified connections closed to make room
        self.refused = 0  # connections refused: outside the allowlist, or every slot verified

    @property
    def port(self) -> int:
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def connections(self) -> int:
        """Verified connections: the ones that count as Vault."""
        with self._lock:
            return sum(1 for p in self._peers.values() if p.verified)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._peers)

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
        log.info(
            "vault audit listener started",
            bind=self._bind,
            port=self.port,
            prefix_required=self._prefix is not None,
            allowed_networks=[str(n) for n in self._allow] or None,
        )
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, drop what waits for delivery."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        self._stopped.set()
        self._dispatcher.stop()
        if self._server is not None:
            self._server.shutdown()
        with self._lock:
            open_peers = list(self._peers.values())
        for peer in open_peers:
            peer.shut()
        if self._server is not None:
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout)
        self._dispatcher.join(timeout)
        # Connection threads are daemons nobody joins: wait for them to finish (and report 0
        # connections) so nothing of this listener runs or logs after stop() returns.
        with self._lock:
            self._lock.wait_for(lambda: not self._peers, timeout)
        log.info("vault audit listener stopped", port=self.port)

    def __enter__(self) -> AuditListener:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- admission (on the accept thread) ------------------------------------------------------

    def _admit(self, sock: socket.socket, address: Any) -> bool:
        peer = str(address)
        if not _peer_allowed(address, self._allow):
            self.refused += 1
            self._throttled("vault audit connection refused: peer outside audit_allow", peer=peer)
            return False
        with self._lock:
            if self._stopping:
                return False
            if len(self._peers) >= self._max_connections and not self._evict_oldest_unverified():
                self.refused += 1
                self._throttled("vault audit connection refused: every slot holds a verified connection", peer=peer)
                return False
            self._peers[sock] = _Peer(sock, peer, self._clock())
        return True

    def _evict_oldest_unverified(self) -> bool:
        """Call with ``_lock`` held. Frees the slot of the oldest unverified connection."""
        waiting = [p for p in self._peers.values() if not p.verified]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda p: p.opened_at)
        del self._peers[oldest.sock]
        oldest.shut()
        self.evicted += 1
        self._throttled("vault audit connection evicted: unverified, and a new one needed its slot", peer=oldest.peer)
        self._lock.notify_all()
        return True

    # -- one connection (on its own thread) ----------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        with self._lock:
            peer = self._peers.get(sock)
        if peer is None:  # evicted before its thread ran
            return
        try:
            self._read(peer)
        except OSError as exc:
            if not peer.closed:
                log.info("vault audit connection broken", peer=peer.peer, error_code=type(exc).__name__)
        except Exception as exc:  # a bug must not print a traceback or take the listener down
            log.warning("vault audit connection failed", peer=peer.peer, error_code=type(exc).__name__)
        finally:
            self._close(peer)

    def _read(self, peer: _Peer) -> None:
        sock = peer.sock
        _keep_alive(sock)
        prefix = self._prefix() if callable(self._prefix) else self._prefix
        required = prefix.encode() if prefix else None
        reader = LineReader(self._max_line_bytes)
        bytes_budget = TokenBucket(self._bytes_per_second, 2 * self._bytes_per_second)
        lines_budget = TokenBucket(self._lines_per_second, 2 * self._lines_per_second)
        unverified_lines = 0
        while not peer.closed:
            if not peer.verified:
                left = peer.opened_at + self._unverified_timeout - self._clock()
                if left <= 0 or unverified_lines >= MAX_UNVERIFIED_LINES:
                    self._throttled("vault audit connection closed: no valid audit entry", peer=peer.peer)
                    return
                sock.settimeout(left)
            try:
                chunk = sock.recv(_RECV_BYTES)
            except TimeoutError:
                continue  # the unverified deadline is checked above
            if not chunk:
                break
            lines = reader.feed(chunk)
            for line in lines:
                verified_before = peer.verified
                self._take(peer, line, required)
                if not verified_before:
                    unverified_lines += 0 if peer.verified else 1
            pause = max(bytes_budget.take(len(chunk)), lines_budget.take(len(lines)))
            if pause > 0 and self._stopped.wait(pause):
                return
        if not peer.closed and (rest := reader.rest()):
            self._take(peer, rest, required)
        if reader.oversized:
            peer.dropped["oversized"] = reader.oversized

    def _take(self, peer: _Peer, line: bytes, prefix: bytes | None) -> None:
        stripped = strip_prefix(line, prefix)
        if stripped is None:
            self.skipped += 1
            peer.drop("without_prefix")
            return
        if not stripped.strip():
            return
        entry = parse_entry(stripped)
        if not is_audit_entry(entry):
            self.skipped += 1
            peer.drop("not_an_audit_entry")
            return
        if not peer.verified:
            self._verify(peer)
        self._line(stripped, entry)

    def _verify(self, peer: _Peer) -> None:
        with self._lock:
            if peer.closed or self._peers.get(peer.sock) is not peer:
                return
            peer.verified = True
            self._report_connections()
        peer.sock.settimeout(None)
        log.info("vault audit connection verified", peer=peer.peer)

    def _close(self, peer: _Peer) -> None:
        if peer.dropped:
            log.warning("vault audit lines dropped", peer=peer.peer, **peer.dropped)
        if peer.verified:
            log.info("vault audit connection closed", peer=peer.peer)
        with contextlib.suppress(OSError):
            peer.sock.close()
        with self._lock:  # last: stop() waits for this
            if self._peers.get(peer.sock) is peer:
                del self._peers[peer.sock]
                if peer.verified:
                    self._report_connections()
            self._lock.notify_all()

    def _report_connections(self) -> None:
        """Call with ``_lock`` held, so the counts arrive in order."""
        verified = sum(1 for p in self._peers.values() if p.verified)
        report_connections(self._on_connections, verified, "vault audit")

    def _line(self, line: bytes, entry: dict[str, Any]) -> None:
        """One audit entry from a connection (tests may override to watch the raw bytes)."""
        self.entries += 1
        path = written_path(entry)
        if path is None:
            return
        self.writes += 1
        log.debug("vault write noticed", path=path, operation=entry["request"]["operation"])
        self._dispatcher.add(path)

    def _deliver(self, path: str) -> None:
        self._on_write(path)  # looked up at each delivery: a test may swap the handler


__all__ = [
    "AuditListener",
    "Debouncer",
    "LineReader",
    "parse_entry",
    "parse_networks",
    "paths_to_mappings",
    "written_path",
]
