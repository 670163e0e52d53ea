"""The Vault audit listener: line handling, write detection, debouncing, path -> mapping, end to end."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import hvac
import pytest

from syncd.app.notify.audit import AuditListener, Debouncer, LineReader, parse_entry, paths_to_mappings, written_path
from syncd.app.notify.dispatch import WriteDispatcher
from syncd.config import Settings, parse_config
from syncd.devstack.vault import VaultEmulator

DEADLINE = 10.0
CANARY = "canary-notify-1c9d4e"
ACCOUNT = "0123456789abcdef0123456789abcdef"


def _entry(
    path: str,
    operation: str = "update",
    kind: str = "response",
    *,
    error: str | None = None,
    namespace: dict[str, str] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "time": "2026-01-01T00:00:00Z",
        "type": kind,
        "auth": {"client_token": "hmac-sha256:00"},
        "request": {"id": "r1", "operation": operation, "path": path, "namespace": namespace or {"id": "root"}},
    }
    if error:
        entry["error"] = error
    return entry


def _line(path: str, operation: str = "update", **kwargs: Any) -> bytes:
    return json.dumps(_entry(path, operation, **kwargs)).encode() + b"\n"


class Recorder:
    """``on_write`` that records paths and lets a test wait for them."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, path: str) -> None:
        with self._changed:
            self.paths.append(path)
            self._changed.notify_all()

    def wait_for(self, path: str, timeout: float = DEADLINE) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: path in self.paths, timeout)


class RawListener(AuditListener):
    """Keeps every complete line it was sent, to check what reached syncd."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw: list[bytes] = []

    def _line(self, line: bytes, entry: dict[str, Any]) -> None:
        self.raw.append(line)
        super()._line(line, entry)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def listener(recorder: Recorder) -> Iterator[RawListener]:
    server = RawListener("127.0.0.1", 0, recorder, debounce_seconds=0.02)
    server.start()
    yield server
    server.stop()


def _all_closed(listener: AuditListener) -> bool:
    """The listener noticed every client hang up (so nothing logs after the test), within the deadline."""
    deadline = time.monotonic() + DEADLINE
    while listener.connections and time.monotonic() < deadline:
        threading.Event().wait(0.005)
    return listener.connections == 0


def _connect(listener: AuditListener) -> socket.socket:
    return socket.create_connection(("127.0.0.1", listener.port), timeout=DEADLINE)


# -- which entries are writes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (_entry("secret/data/app/db", "create"), "secret/data/app/db"),
        (_entry("secret/data/app/db", "update"), "secret/data/app/db"),
        (_entry("secret/data/app/db", "patch"), "secret/data/app/db"),
        (_entry("secret/metadata/app/db", "delete"), "secret/metadata/app/db"),
        (_entry("kv/app/db", "update"), "kv/app/db"),
        (_entry("secret/data/app/db", "read"), None),
        (_entry("secret/metadata/app/", "list"), None),
        (_entry("secret/data/app/db", "update", "request"), None),
        (_entry("secret/data/app/db", "update", error="permission denied"), None),
        (_entry("secret/data/app/db", namespace={"id": "abc", "path": "team/"}), "team/secret/data/app/db"),
        (_entry("secret/data/app/db", namespace={"id": "root"}), "secret/data/app/db"),
        (_entry("", "update"), None),
        ({"type": "response", "request": "not an object"}, None),
        (["not", "an", "entry"], None),
    ],
)
def test_only_successful_write_responses_name_a_path(entry: Any, expected: str | None) -> None:
    assert written_path(entry) == expected


def test_entries_parse_after_a_prefix_and_garbage_does_not() -> None:
    assert parse_entry(b'vault-1: {"type": "response"}') == {"type": "response"}
    assert parse_entry(b"not json at all") is None
    assert parse_entry(b'{"truncated": ') is None
    assert parse_entry(b"\xff\xfe{\xff}") is None


# -- lines -------------------------------------------------------------------------------------------


def test_lines_are_joined_across_chunks() -> None:
    reader = LineReader(limit=100)

    assert reader.feed(b'{"a"') == []
    assert reader.feed(b': 1}\n{"b": 2}\n{"c"') == [b'{"a": 1}', b'{"b": 2}']
    assert reader.rest() == b'{"c"'


def test_an_oversized_line_is_dropped_up_to_its_newline() -> None:
    reader = LineReader(limit=10)

    lines = reader.feed(b"x" * 8) + reader.feed(b"y" * 8) + reader.feed(b"zz\nok\n" + b"w" * 20 + b"\nfine\n")

    assert lines == [b"ok", b"fine"]
    assert reader.oversized == 2


# -- leading-edge coalescing (fake time) ----------------------------------------------------------------


def test_the_first_write_is_due_at_once_with_the_default_spacing() -> None:
    debouncer = Debouncer(0.0)
    debouncer.add("a", 5.0)

    assert debouncer.due_at() == 5.0
    assert debouncer.take_due(5.0) == ["a"]
    assert debouncer.due_at() is None


def test_the_first_write_is_due_at_once_even_with_a_spacing() -> None:
    debouncer = Debouncer(0.2)
    debouncer.add("a", 1.0)

    assert debouncer.take_due(1.0) == ["a"]  # no waiting for the burst to go quiet


def test_writes_within_the_spacing_merge_into_one_delivery_in_arrival_order() -> None:
    debouncer = Debouncer(0.2)
    debouncer.add("a", 0.0)
    assert debouncer.take_due(0.0) == ["a"]
    for now, key in ((0.01, "b"), (0.05, "a"), (0.1, "b"), (0.15, "c")):
        debouncer.add(key, now)

    assert debouncer.take_due(0.19) == []
    assert debouncer.due_at() == pytest.approx(0.2)
    assert debouncer.take_due(0.2) == ["b", "a", "c"]
    assert len(debouncer) == 0


def test_a_write_after_the_spacing_has_passed_is_due_at_once_again() -> None:
    debouncer = Debouncer(0.2)
    debouncer.add("a", 0.0)
    debouncer.take_due(0.0)
    debouncer.add("a", 0.5)

    assert debouncer.take_due(0.5) == ["a"]


def test_a_key_written_non_stop_is_delivered_once_per_spacing() -> None:
    debouncer = Debouncer(0.25)
    deliveries = []
    for step in range(40):  # a write every 0.125 s for 5 s
        now = step * 0.125
        debouncer.add("hot", now)
        if debouncer.take_due(now):
            deliveries.append(now)

    assert deliveries[0] == 0.0
    assert all(later - earlier >= 0.25 for earlier, later in itertools.pairwise(deliveries))
    assert len(deliveries) == 20  # nothing starves, nothing more often than the spacing


class FrozenClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_dispatcher_delivers_the_first_write_at_once_and_holds_later_ones_for_the_spacing(
    recorder: Recorder,
) -> None:
    clock = FrozenClock()  # time stands still: only a leading edge can deliver anything
    dispatcher = WriteDispatcher(recorder, debounce_seconds=10.0, clock=clock, thread_name="test-dispatch").start()
    try:
        dispatcher.add("secret/data/first")
        assert recorder.wait_for("secret/data/first")
        dispatcher.add("secret/data/second")
        dispatcher.add("secret/data/first")
        assert not recorder.wait_for("secret/data/second", timeout=0.05)  # within the spacing: held
        clock.now += 10.0
        assert recorder.wait_for("secret/data/second")
        assert recorder.paths == ["secret/data/first", "secret/data/second", "secret/data/first"]
    finally:
        dispatcher.stop()
        dispatcher.join(DEADLINE)


# -- the listener over TCP -------------------------------------------------------------------------------


def test_an_entry_split_across_sends_is_read_whole(listener: RawListener, recorder: Recorder) -> None:
    line = _line("secret/data/app/db")
    with _connect(listener) as client:
        client.sendall(line[:17])
        client.sendall(line[17:40])
        client.sendall(line[40:])

        assert recorder.wait_for("secret/data/app/db")
    assert _all_closed(listener)
    assert recorder.paths == ["secret/data/app/db"]


def test_garbage_and_oversized_lines_are_skipped_and_the_connection_lives_on(recorder: Recorder) -> None:
    with RawListener("127.0.0.1", 0, recorder, debounce_seconds=0, max_line_bytes=2048) as listener:
        with _connect(listener) as client:
            client.sendall(b"this is not json\n\xff\xfe\x00\n[1, 2]\n")
            client.sendall(b'{"type": "response", "request": ' + b"x" * 5000 + b"}\n")
            client.sendall(_line("secret/data/after-garbage"))

            assert recorder.wait_for("secret/data/after-garbage")
        assert _all_closed(listener)
        assert listener.skipped == 3
        assert recorder.paths == ["secret/data/after-garbage"]


def test_several_vault_nodes_can_stream_at_once(listener: RawListener, recorder: Recorder) -> None:
    with _connect(listener) as node_a, _connect(listener) as node_b, _connect(listener) as node_c:
        node_a.sendall(_line("secret/data/from-a")[:10])
        node_b.sendall(_line("secret/data/from-b"))
        node_c.sendall(_line("kv/from-c", "delete"))
        node_a.sendall(_line("secret/data/from-a")[10:])

        for path in ("secret/data/from-a", "secret/data/from-b", "kv/from-c"):
            assert recorder.wait_for(path)
    assert _all_closed(listener)
    assert sorted(recorder.paths) == ["kv/from-c", "secret/data/from-a", "secret/data/from-b"]


def test_a_burst_of_writes_becomes_a_leading_delivery_and_at_most_one_follow_up(recorder: Recorder) -> None:
    with AuditListener("127.0.0.1", 0, recorder, debounce_seconds=0.2) as listener, _connect(listener) as client:
        client.sendall(b"".join(_line("secret/data/hot", op) for op in ("create", "update", "patch", "update")))
        assert recorder.wait_for("secret/data/hot")
        client.sendall(_line("secret/data/later"))
        assert recorder.wait_for("secret/data/later")

        assert recorder.paths[0] == "secret/data/hot"
        assert recorder.paths.count("secret/data/hot") <= 2  # the first at once, the rest merged
        assert recorder.paths.count("secret/data/later") == 1
        assert listener.writes == 5


def test_reads_requests_and_failed_writes_notify_nothing(listener: RawListener, recorder: Recorder) -> None:
    with _connect(listener) as client:
        client.sendall(
            _line("secret/data/read", "read")
            + _line("secret/data/request-only", kind="request")
            + _line("secret/data/denied", error="1 error occurred:\n\t* permission denied\n\n")
            + _line("secret/data/sentinel")
        )
        assert recorder.wait_for("secret/data/sentinel")
    assert _all_closed(listener)
    assert recorder.paths == ["secret/data/sentinel"]


def test_a_failing_handler_does_not_stop_later_notifications(listener: RawListener) -> None:
    seen: list[str] = []
    arrived = threading.Event()

    def flaky(path: str) -> None:
        seen.append(path)
        if path.endswith("first"):
            raise RuntimeError("handler bug")
        arrived.set()

    listener._on_write = flaky  # the fixture's listener, with another handler
    with _connect(listener) as client:
        client.sendall(_line("secret/data/first"))
        client.sendall(_line("secret/data/second"))

        assert arrived.wait(DEADLINE)
    assert _all_closed(listener)
    assert seen == ["secret/data/first", "secret/data/second"]


def test_stop_closes_open_connections_and_the_port(recorder: Recorder) -> None:
    listener = AuditListener("127.0.0.1", 0, recorder).start()
    port = listener.port
    client = _connect(listener)
    client.sendall(_line("secret/data/x"))
    assert recorder.wait_for("secret/data/x")  # the connection is being served

    listener.stop()

    assert client.recv(1) == b""  # closed by the listener, within the socket timeout
    client.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)


# -- paths -> mappings ------------------------------------------------------------------------------------


def _settings(namespace: str | None = None) -> Settings:
    vault_namespace = f'namespace = "{namespace}"' if namespace else ""

    def mapping(name: str, mount: str, path: str, kv_version: str = '"auto"') -> str:
        return f"""
[[mapping]]
name = "{name}"
vault = {{ mount = "{mount}", path = "{path}", kv_version = {kv_version} }}
target = {{ script = "{name}" }}
secret_text = {{ keys = {{ password = "DB_PASSWORD" }} }}
"""

    return parse_config(
        f"""
[vault]
address = "http://127.0.0.1:8200"
{vault_namespace}
[vault.auth]
method = "token"
token = {{ env = "VAULT_TOKEN" }}
[cloudflare]
account_id = "{ACCOUNT}"
[cloudflare.auth]
api_token = {{ env = "CF_TOKEN" }}
"""
        + mapping("api", "secret", "app/db")
        + mapping("worker", "secret", "app/db")
        + mapping("nested-mount", "team/kv", "svc/api", "2")
        + mapping("legacy", "kv", "app/legacy", "1")
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("secret/data/app/db", {"api", "worker"}),
        ("secret/metadata/app/db", {"api", "worker"}),
        ("secret/delete/app/db", {"api", "worker"}),
        ("secret/undelete/app/db", {"api", "worker"}),
        ("secret/destroy/app/db", {"api", "worker"}),
        ("secret/app/db", {"api", "worker"}),  # kv_version auto: a KV v1 write at the same place
        ("/secret/data/app/db/", {"api", "worker"}),
        ("secret/data/app/db2", set()),
        ("secret/data/app", set()),
        ("secret/subkeys/app/db", set()),
        ("team/kv/data/svc/api", {"nested-mount"}),
        ("team/kv/metadata/svc/api", {"nested-mount"}),
        ("team/kv/svc/api", set()),  # stated KV v2: no v1 form
        ("kv/app/legacy", {"legacy"}),
        ("kv/data/app/legacy", set()),  # stated KV v1: no v2 form
        ("other/data/app/db", set()),
    ],
)
def test_a_written_path_names_the_mappings_that_read_it(path: str, expected: set[str]) -> None:
    assert paths_to_mappings(_settings(), path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("eng/team/secret/data/app/db", {"api", "worker"}),
        ("eng/team/kv/app/legacy", {"legacy"}),
        ("secret/data/app/db", set()),  # the root namespace's secret, not ours
        ("eng/secret/data/app/db", set()),
        ("eng/team/other/secret/data/app/db", set()),
    ],
)
def test_with_a_vault_namespace_only_paths_inside_it_count(path: str, expected: set[str]) -> None:
    assert paths_to_mappings(_settings(namespace="/eng/team/"), path) == expected


# -- end to end with the Vault emulator ---------------------------------------------------------------


@pytest.fixture
def vault() -> Iterator[VaultEmulator]:
    emulator = VaultEmulator().start()
    yield emulator
    threading.Thread(target=emulator.stop, daemon=True).start()


def _enable_devices(root: hvac.Client, port: int) -> None:
    # Vault blocks requests when no device can write: the socket device runs beside a file one.
    root.sys.enable_audit_device("file", path="file", options={"file_path": "discard"})
    root.sys.enable_audit_device("socket", path="syncd", options={"address": f"127.0.0.1:{port}", "socket_type": "tcp"})


def test_a_vault_write_notifies_its_path_and_no_value_reaches_the_listener(
    vault: VaultEmulator, listener: RawListener, recorder: Recorder
) -> None:
    root = hvac.Client(url=vault.url, token=vault.root_token)
    _enable_devices(root, listener.port)

    root.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": CANARY})

    assert recorder.wait_for("secret/data/app/db")
    assert paths_to_mappings(_settings(), recorder.paths[0]) == {"api", "worker"}
    received = b"\n".join(listener.raw)
    assert CANARY.encode() not in received
    assert vault.root_token.encode() not in received
    hashed = root.sys.calculate_hash("syncd", CANARY)["data"]["hash"]
    assert hashed.encode() in received  # the value was there, HMAC'd


def test_kv_v1_writes_and_kv_v2_deletions_notify_too(
    vault: VaultEmulator, listener: RawListener, recorder: Recorder
) -> None:
    root = hvac.Client(url=vault.url, token=vault.root_token)
    root.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": "v1"})
    _enable_devices(root, listener.port)

    root.secrets.kv.v1.create_or_update_secret("app/legacy", secret={"password": CANARY}, mount_point="kv")
    root.secrets.kv.v2.delete_latest_version_of_secret("app/db")
    root.secrets.kv.v2.delete_metadata_and_all_versions("app/db")

    for path in ("kv/app/legacy", "secret/data/app/db", "secret/metadata/app/db"):
        assert recorder.wait_for(path)
    assert paths_to_mappings(_settings(), "kv/app/legacy") == {"legacy"}
    assert CANARY.encode() not in b"\n".join(listener.raw)


def test_writes_while_syncd_is_away_are_lost_but_later_ones_arrive(vault: VaultEmulator, recorder: Recorder) -> None:
    listener = AuditListener("127.0.0.1", 0, recorder, debounce_seconds=0.02).start()
    port = listener.port
    root = hvac.Client(url=vault.url, token=vault.root_token)
    _enable_devices(root, port)
    root.secrets.kv.v2.create_or_update_secret("first", secret={"k": "v"})
    assert recorder.wait_for("secret/data/first")

    listener.stop()
    root.secrets.kv.v2.create_or_update_secret("while-away", secret={"k": "v"})  # Vault keeps serving
    assert vault.audit.wait_idle(DEADLINE)
    with AuditListener("127.0.0.1", port, recorder, debounce_seconds=0.02):
        wrote = _write_until_noticed(root, recorder, "back")

    assert wrote
    assert "secret/data/while-away" not in recorder.paths  # polling repairs what the stream lost


def _write_until_noticed(root: hvac.Client, recorder: Recorder, path: str, attempts: int = 20) -> bool:
    """The first entries after a restart can vanish with the old connection (as with real Vault)."""
    for attempt in range(attempts):
        root.secrets.kv.v2.create_or_update_secret(path, secret={"k": str(attempt)})
        if recorder.wait_for(f"secret/data/{path}", timeout=0.5):
            return True
    return False
