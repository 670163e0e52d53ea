"""Finding 2 and 6 of issue 21 against the running ops server: a header bomb, a slowloris, too
many connections, tracebacks from ``handle_error``, ``/status`` on a public port and 401s."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncd.app.service.http_server import OpsServer
from syncd.app.service.metrics import Metrics
from tests.app.conftest import LogCapture
from tests.app.test_http_server import FakeSource, Token, bearer
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

WAIT = 10.0


@pytest.fixture(name="source")
def _source() -> FakeSource:
    return FakeSource()


@pytest.fixture(name="token")
def _token() -> Token:
    return Token()


@pytest.fixture(name="http")
def _http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=WAIT) as client:
        yield client


def _server(source: FakeSource, token: Token | None = None, **kwargs: Any) -> OpsServer:
    return OpsServer(source, Metrics(version="0"), bind="127.0.0.1", port=0, trigger_token=token, **kwargs).start()


def _raw(server: OpsServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)


def _reply(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_header_bomb_is_answered_431_after_reading_no_more_than_the_limit(source: FakeSource) -> None:
    server = _server(source)
    try:
        with _raw(server) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            bomb = b"".join(b"X-Pad-%d: %s\r\n" % (n, b"a" * 60_000) for n in range(100))  # 6 MB of headers
            with contextlib.suppress(OSError):  # the server may close before taking it all: the point
                conn.sendall(bomb)
            reply = _reply(conn)
        assert reply.startswith(b"HTTP/1.0 431") or reply.startswith(b"HTTP/1.1 431")
        with httpx.Client(trust_env=False, timeout=WAIT) as http:
            assert http.get(f"{server.url}/healthz").status_code == 200  # and it serves on
    finally:
        server.stop()


def test_a_slowloris_cannot_hold_more_slots_than_the_cap_nor_lock_out_a_probe(
    source: FakeSource, http: httpx.Client
) -> None:
    server = _server(source, max_connections=8, request_deadline=30.0)
    held: list[socket.socket] = []
    try:
        for _ in range(40):  # far more than the slots, each with an unfinished request head
            conn = _raw(server)
            conn.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            held.append(conn)
        assert server._server is not None
        assert wait_until(lambda: server._server is not None and server._server.open_connections <= 8, WAIT)
        assert http.get(f"{server.url}/healthz").status_code == 200  # evicts the oldest slow one
        assert server._server.open_connections <= 8
        assert server._server.evicted >= 32
    finally:
        for conn in held:
            conn.close()
        server.stop()


def test_one_deadline_per_request_however_slowly_it_trickles(source: FakeSource) -> None:
    server = _server(source, request_deadline=0.5)
    try:
        with _raw(server) as conn:
            stop = threading.Event()

            def trickle() -> None:  # one byte every 50 ms: each read is quick, the request never ends
                while not stop.wait(0.05):
                    try:
                        conn.sendall(b"a")
                    except OSError:
                        return

            conn.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            sender = threading.Thread(target=trickle, daemon=True)
            sender.start()
            try:
                assert _reply(conn) == b""  # closed by the server at the deadline (within WAIT)
            finally:
                stop.set()
                sender.join(WAIT)
    finally:
        server.stop()


def test_beyond_the_cap_of_busy_slots_a_connection_gets_503_at_once(source: FakeSource, http: httpx.Client) -> None:
    entered, release = threading.Barrier(3, timeout=WAIT), threading.Event()
    original = source.healthz

    def slow() -> tuple[bool, dict[str, Any]]:
        entered.wait()
        release.wait(WAIT)
        return original()

    source.healthz = slow  # type: ignore[method-assign]
    server = _server(source, max_connections=2)
    codes: list[int] = []
    workers = [
        threading.Thread(target=lambda: codes.append(http.get(f"{server.url}/healthz").status_code)) for _ in range(2)
    ]
    try:
        for worker in workers:
            worker.start()
        entered.wait()  # both slots hold complete requests
        with _raw(server) as conn:
            conn.sendall(b"GET /readyz HTTP/1.1\r\n\r\n")
            assert _reply(conn).startswith(b"HTTP/1.0 503")
    finally:
        release.set()
        for worker in workers:
            worker.join(WAIT)
        server.stop()
    assert codes == [200, 200]


def test_handle_error_logs_one_structured_line_not_a_traceback(
    source: FakeSource, capfd: pytest.CaptureFixture[str]
) -> None:
    logs = LogCapture()
    server = _server(source)
    try:
        assert server._server is not None
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            server._server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.stop()
    assert [line["error_code"] for line in logs.events("ops connection failed")] == ["RuntimeError"]
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out and "Traceback" not in logs.text
    assert sys.exc_info() == (None, None, None)


def test_status_on_a_public_port_is_reduced_unless_the_trigger_token_is_presented(
    source: FakeSource, token: Token, http: httpx.Client
) -> None:
    server = _server(source, token, status_needs_token=True)
    try:
        reduced = http.get(f"{server.url}/status").json()
        assert reduced["healthy"] is True and reduced["mappings"]["in_sync"] == 2
        assert "api-keys" not in str(reduced)
        assert http.get(f"{server.url}/status", headers=bearer("wrong")).json() == reduced
        full = http.get(f"{server.url}/status", headers=bearer(token.current)).json()
        assert [m["name"] for m in full["mappings"]] == ["api-keys", "signing"]
    finally:
        server.stop()


def test_a_loopback_bind_serves_the_full_status(source: FakeSource, http: httpx.Client) -> None:
    server = _server(source)
    try:
        assert not server.status_needs_token
        assert "api-keys" in http.get(f"{server.url}/status").text
    finally:
        server.stop()


def test_401s_are_logged_at_warning_once_a_minute_per_peer(
    source: FakeSource, token: Token, http: httpx.Client
) -> None:
    logs = LogCapture()
    server = _server(source, token)
    try:
        for _ in range(5):
            assert http.post(f"{server.url}/trigger", headers=bearer("wrong")).status_code == 401
    finally:
        server.stop()
    lines = logs.events("ops request unauthorized")
    assert len(lines) == 1 and lines[0]["level"] == "warning" and lines[0]["peer"] == "127.0.0.1"
    assert token.current not in logs.text
