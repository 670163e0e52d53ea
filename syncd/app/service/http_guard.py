"""A stdlib HTTP server that an unauthenticated client cannot exhaust (the ops server's base).

``http.server.ThreadingHTTPServer`` gives every connection a thread, limits each header line
(64 KiB) and the number of headers (100) but not their total, and times out each read, not the
request: 8 requests of 6 MiB headers, 40 that disconnect mid-headers or a slowloris holding
hundreds of threads were enough to take the process past its memory limit (issue 21, finding 2).
``GuardedHTTPServer`` keeps the stdlib's parsing and adds:

- **Slots**: at most ``max_connections`` connections are served at once. When all are taken, a
  new connection evicts the oldest one that has not finished sending its request head (a slow or
  silent client), so a slowloris cannot lock out the kubelet's probes; only when every slot is
  busy with a complete request is the newcomer answered ``503`` at once, from the accept thread,
  without a thread of its own.
- **One deadline per request**: the request line, the headers and the body must arrive within
  ``request_deadline`` seconds in total, however slowly they trickle (every read's timeout is
  what is left of it); past it the connection is closed.
- **A total header limit**: more than ``max_header_bytes`` before the end of the headers is
  answered ``431`` and the connection closed; the body is limited by the handler.
- **Structured logging**: ``handle_error`` writes one structlog line (the error's type), never
  the stdlib's traceback on stderr.

Connections are HTTP/1.0 (one request each), so a slot is held for one request at most.

The standard library rather than a server library: the alternatives in reach either run on asyncio
(uvicorn; the daemon uses plain threads) or bound connections by refusing to accept more
(waitress, cheroot: a slowloris then still locks the probes out), and each needs the same per-
request deadline written around it; eviction of incomplete requests is what keeps probes alive.
"""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import structlog

log = structlog.get_logger("syncd.app.service.http_server")

MAX_CONNECTIONS: Final = 64
REQUEST_DEADLINE_SECONDS: Final = 10.0
MAX_HEADER_BYTES: Final = 16 * 1024
WRITE_TIMEOUT_SECONDS: Final = 10.0
_BUSY_BODY: Final = b'{"error": "busy", "reason": "every connection slot is serving a request"}'
_BUSY: Final = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Retry-After: 1\r\nContent-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)


class HeadersTooLarge(Exception):
    """The request head passed ``max_header_bytes``."""


class _DeadlineReader(io.RawIOBase):
    """The socket as a raw stream whose reads all end by one deadline, with a byte ``limit``."""

    def __init__(self, sock: socket.socket, deadline: float, limit: int) -> None:
        self._sock = sock
        self.deadline = deadline
        self.limit = limit
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request deadline passed")
        room = self.limit - self.consumed
        if room <= 0:
            raise HeadersTooLarge
        self._sock.settimeout(left)
        view = memoryview(buffer)
        count = self._sock.recv_into(view[: min(len(view), room)])
        self.consumed += count
        return count


@dataclass(eq=False)
class _Slot:
    sock: socket.socket
    opened_at: float
    head_done: bool = False

    def evict(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class GuardedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    max_connections: int = MAX_CONNECTIONS

    def server_activate(self) -> None:
        self._slots: dict[socket.socket, _Slot] = {}
        self._slots_lock = threading.Lock()
        self.evicted = 0
        self.busy = 0
        super().server_activate()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self._slots_lock:
            if len(self._slots) >= self.max_connections and not self._evict_oldest_incomplete():
                self.busy += 1
                admitted = False
            else:
                self._slots[request] = _Slot(request, time.monotonic())
                admitted = True
        if not admitted:
            _answer_busy(request)
        return admitted

    def _evict_oldest_incomplete(self) -> bool:
        """Call with ``_slots_lock`` held: frees the slot of the oldest connection still sending its head."""
        waiting = [slot for slot in self._slots.values() if not slot.head_done]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda slot: slot.opened_at)
        del self._slots[oldest.sock]
        oldest.evict()
        self.evicted += 1
        return True

    def head_done(self, request: Any) -> None:
        with self._slots_lock:
            slot = self._slots.get(request)
            if slot is not None:
                slot.head_done = True

    def shutdown_request(self, request: Any) -> None:
        with self._slots_lock:
            self._slots.pop(request, None)
        super().shutdown_request(request)

    @property
    def open_connections(self) -> int:
        with self._slots_lock:
            return len(self._slots)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        log.warning("ops connection failed", error_code=type(error).__name__ if error else None)


def _answer_busy(request: socket.socket) -> None:
    """503 without reading the request, without blocking the accept thread."""
    with contextlib.suppress(OSError):
        request.setblocking(False)
        request.send(_BUSY)


class GuardedHandler(BaseHTTPRequestHandler):
    """Reads the request through ``_DeadlineReader``: one deadline, a head of ``max_header_bytes``."""

    server: GuardedHTTPServer
    request_deadline: float = REQUEST_DEADLINE_SECONDS
    max_header_bytes: int = MAX_HEADER_BYTES
    max_body_bytes: int = 64 * 1024

    def setup(self) -> None:
        super().setup()
        self._reader = _DeadlineReader(self.connection, time.monotonic() + self.request_deadline, self.max_header_bytes)
        self.rfile = io.BufferedReader(self._reader, 4096)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except HeadersTooLarge:
            self.close_connection = True
            if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":  # cut off in the request line
                self.request_version, self.command = "HTTP/1.0", "GET"
            with contextlib.suppress(OSError):
                self.send_error(431, "Request Header Fields Too Large")
        except OSError:  # the deadline passed (TimeoutError), the peer went away: nothing to answer
            self.close_connection = True

    def send_response(self, code: int, message: str | None = None) -> None:
        with contextlib.suppress(OSError):  # the reply's sends: a timeout of their own, not the deadline's rest
            self.connection.settimeout(WRITE_TIMEOUT_SECONDS)
        super().send_response(code, message)

    def head_received(self) -> None:
        """Call once the request line and headers are parsed (in ``do_*``): the body may follow,
        up to ``max_body_bytes``, within the same deadline."""
        self._reader.limit = self._reader.consumed + self.max_body_bytes
        self.server.head_done(self.request)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    def log_error(self, format: str, *args: Any) -> None:
        log.debug("ops request refused", detail=format % args)


__all__ = ["GuardedHTTPServer", "GuardedHandler", "HeadersTooLarge"]
