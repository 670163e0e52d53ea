"""The emulator's event notifications: the WebSocket handshake and frames, auth, event content."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from io import BufferedReader
from typing import Any
from urllib.parse import quote, urlsplit

import hvac
import pytest

from syncd.devstack.vault import VaultEmulator
from syncd.devstack.vault.events import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    EventFilter,
    accept_value,
    read_frame,
)

CANARY = "canary-event-value-5c1d"
TIMEOUT = 10.0


class RawSocket:
    """A hand-written WebSocket client: the handshake bytes and frames are the test's own."""

    def __init__(self, sock: socket.socket, reader: BufferedReader, status: int, headers: dict[str, str]) -> None:
        self.sock, self.reader, self.status, self.headers = sock, reader, status, headers

    def send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def frame(self) -> tuple[int, bytes]:
        return read_frame(self.reader)

    def event(self) -> dict[str, Any]:
        opcode, payload = self.frame()
        assert opcode == OP_TEXT
        parsed: dict[str, Any] = json.loads(payload)
        return parsed

    def body(self) -> bytes:
        return self.reader.read(int(self.headers.get("content-length", "0")))


@contextmanager
def open_socket(
    vault: VaultEmulator, pattern: str, token: str | None, query: str = "json=true", key: str | None = None
) -> Iterator[RawSocket]:
    address = urlsplit(vault.url)
    sock = socket.create_connection((address.hostname or "", address.port or 0), timeout=TIMEOUT)
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET /v1/sys/events/subscribe/{quote(pattern, safe='/*-')}?{query} HTTP/1.1",
        f"Host: {address.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if token is not None:
        lines.append(f"X-Vault-Token: {token}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    reader = sock.makefile("rb")
    status = int(reader.readline().split()[1])
    headers: dict[str, str] = {}
    while (line := reader.readline().decode()) not in ("\r\n", ""):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        yield RawSocket(sock, reader, status, headers)
    finally:
        reader.close()
        sock.close()


def test_handshake_answers_101_with_the_rfc6455_accept_value(vault: VaultEmulator) -> None:
    key = "dGhlIHNhbXBsZSBub25jZQ=="  # the RFC's example key
    with open_socket(vault, "kv*", vault.root_token, key=key) as ws:
        assert ws.status == 101
        assert ws.headers["upgrade"].lower() == "websocket"
        assert ws.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert accept_value(key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_kv2_write_arrives_as_a_cloudevent_with_string_metadata_and_no_secret_value(
    vault: VaultEmulator, root: hvac.Client
) -> None:
    with open_socket(vault, "kv-v2/*", vault.root_token) as ws:
        root.secrets.kv.v2.create_or_update_secret("app/db", {"password": CANARY})
        opcode, payload = ws.frame()
    assert opcode == OP_TEXT
    assert CANARY.encode() not in payload
    event = json.loads(payload)
    assert event["specversion"] == "1.0" and event["datacontentype"] == "application/cloudevents"
    assert event["data"]["event_type"] == "kv-v2/data-write"
    assert event["data"]["plugin_info"]["mount_path"] == "secret/"
    metadata = event["data"]["event"]["metadata"]
    assert metadata == {
        "modified": "true",
        "operation": "data-write",
        "path": "secret/data/app/db",
        "data_path": "secret/data/app/db",
        "current_version": "1",
        "oldest_version": "0",
    }
    assert all(isinstance(value, str) for value in metadata.values())


def test_each_kv_change_publishes_the_event_vault_would(vault: VaultEmulator, root: hvac.Client) -> None:
    kv2 = root.secrets.kv.v2
    with open_socket(vault, "kv*", vault.root_token) as ws:
        kv2.create_or_update_secret("app", {"a": "1"})
        merge_patch = {"Content-Type": "application/merge-patch+json"}
        root.adapter.request("PATCH", "/v1/secret/data/app", json={"data": {"b": "2"}}, headers=merge_patch)
        kv2.delete_secret_versions("app", [1])
        kv2.undelete_secret_versions("app", [1])
        kv2.destroy_secret_versions("app", [1])
        kv2.update_metadata("app", max_versions=3)
        kv2.delete_metadata_and_all_versions("app")
        root.secrets.kv.v1.create_or_update_secret("svc", {"t": "x"}, mount_point="kv")
        root.secrets.kv.v1.delete_secret("svc", mount_point="kv")
        seen = [ws.event()["data"] for _ in range(9)]
    summary = [(d["event_type"], d["event"]["metadata"]["path"], d["event"]["metadata"].get("data_path")) for d in seen]
    assert summary == [
        ("kv-v2/data-write", "secret/data/app", "secret/data/app"),
        ("kv-v2/data-patch", "secret/data/app", "secret/data/app"),
        ("kv-v2/delete", "secret/delete/app", None),
        ("kv-v2/undelete", "secret/undelete/app", "secret/data/app"),
        ("kv-v2/destroy", "secret/destroy/app", None),
        ("kv-v2/metadata-write", "secret/metadata/app", "secret/metadata/app"),
        ("kv-v2/metadata-delete", "secret/metadata/app", None),
        ("kv-v1/write", "kv/svc", "kv/svc"),
        ("kv-v1/delete", "kv/svc", None),
    ]
    assert seen[2]["event"]["metadata"]["deleted_versions"] == "[1]"


def test_event_type_pattern_selects_the_events(vault: VaultEmulator, root: hvac.Client) -> None:
    with open_socket(vault, "kv-v1/*", vault.root_token) as ws:
        root.secrets.kv.v2.create_or_update_secret("skipped", {"a": "1"})
        root.secrets.kv.v1.create_or_update_secret("wanted", {"a": "1"}, mount_point="kv")
        assert ws.event()["data"]["event"]["metadata"]["path"] == "kv/wanted"


def test_failed_writes_and_reads_publish_nothing(vault: VaultEmulator, root: hvac.Client) -> None:
    root.secrets.kv.v2.create_or_update_secret("app", {"a": "1"})
    with open_socket(vault, "kv*", vault.root_token) as ws:
        root.secrets.kv.v2.read_secret_version("app", raise_on_deleted_version=True)
        with pytest.raises(hvac.exceptions.InvalidRequest):
            root.secrets.kv.v2.create_or_update_secret("app", {"a": "2"}, cas=0)  # CAS mismatch: 400
        root.secrets.kv.v2.create_or_update_secret("marker", {"a": "1"})
        assert ws.event()["data"]["event"]["metadata"]["path"] == "secret/data/marker"


def test_filter_on_data_path_passes_only_that_secret(vault: VaultEmulator, root: hvac.Client) -> None:
    query = "json=true&filter=" + quote('data_path == "secret/data/b"')
    with open_socket(vault, "kv*", vault.root_token, query=query) as ws:
        root.secrets.kv.v2.create_or_update_secret("a", {"x": "1"})
        root.secrets.kv.v2.create_or_update_secret("b", {"x": "1"})
        assert ws.event()["data"]["event"]["metadata"]["path"] == "secret/data/b"


def test_unsupported_filter_closes_with_1003_after_the_upgrade(vault: VaultEmulator) -> None:
    query = "json=true&filter=" + quote('data_path == "a" or data_path == "b"')
    with open_socket(vault, "kv*", vault.root_token, query=query) as ws:
        assert ws.status == 101
        opcode, payload = ws.frame()
    assert opcode == OP_CLOSE
    assert struct.unpack("!H", payload[:2])[0] == 1003


def test_filter_subset_parsing() -> None:
    parsed = EventFilter.parse('operation != "data-delete" and data_path == secret/data/x')
    assert parsed.matches({"operation": "data-write", "data_path": "secret/data/x"})
    assert not parsed.matches({"operation": "data-delete", "data_path": "secret/data/x"})
    with pytest.raises(ValueError, match="unsupported"):
        EventFilter.parse("data_path matches foo")


def test_missing_or_invalid_token_is_refused_with_403_before_the_upgrade(vault: VaultEmulator) -> None:
    for token in (None, "hvs.not-a-token"):
        with open_socket(vault, "kv*", token) as ws:
            assert ws.status == 403
            assert "permission denied" in json.loads(ws.body())["errors"][0]


def test_token_without_read_on_the_subscribe_path_is_refused(vault: VaultEmulator, root: hvac.Client) -> None:
    root.sys.create_or_update_policy("reader", 'path "secret/data/*" { capabilities = ["read", "subscribe"] }')
    token = root.auth.token.create(policies=["reader"])["auth"]["client_token"]
    with open_socket(vault, "kv*", token) as ws:
        assert ws.status == 403


def test_non_root_token_gets_only_events_with_a_data_path_it_may_subscribe_to(
    vault: VaultEmulator, root: hvac.Client
) -> None:
    policy = """
    path "sys/events/subscribe/*" { capabilities = ["read"] }
    path "secret/data/team/*" { capabilities = ["read", "subscribe"] subscribe_event_types = ["*"] }
    """
    root.sys.create_or_update_policy("events", policy)
    token = root.auth.token.create(policies=["events"])["auth"]["client_token"]
    with open_socket(vault, "kv*", token) as ws:
        assert ws.status == 101
        root.secrets.kv.v2.create_or_update_secret("other/x", {"a": "1"})  # no subscribe capability
        root.secrets.kv.v2.create_or_update_secret("team/x", {"a": "1"})
        root.secrets.kv.v2.delete_latest_version_of_secret("team/x")  # no data_path: root only
        root.secrets.kv.v2.create_or_update_secret("team/y", {"a": "1"})
        paths = [ws.event()["data"]["event"]["metadata"]["path"] for _ in range(2)]
    assert paths == ["secret/data/team/x", "secret/data/team/y"]


def test_bad_requests_before_the_upgrade(vault: VaultEmulator) -> None:
    with open_socket(vault, "kv*", vault.root_token, query="json=maybe") as ws:
        assert ws.status == 400
    with open_socket(vault, "", vault.root_token) as ws:
        assert ws.status == 400


def test_client_ping_gets_a_pong_and_client_close_is_echoed(vault: VaultEmulator) -> None:
    with open_socket(vault, "kv*", vault.root_token) as ws:
        ws.send(OP_PING, b"hello")
        assert ws.frame() == (OP_PONG, b"hello")
        ws.send(OP_CLOSE, struct.pack("!H", 1000))
        opcode, payload = ws.frame()
        assert opcode == OP_CLOSE and struct.unpack("!H", payload[:2])[0] == 1000


def test_admin_drop_cuts_every_event_connection(vault: VaultEmulator, root: hvac.Client) -> None:
    with open_socket(vault, "kv*", vault.root_token) as ws:
        root.secrets.kv.v2.create_or_update_secret("first", {"a": "1"})  # the subscription is live
        ws.event()
        request = urllib.request.Request(f"{vault.url}/__devstack/events/drop", method="POST")
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            assert json.loads(answer.read())["dropped"] == 1
        with pytest.raises(EOFError):
            ws.frame()
    # The subscription's thread notices the cut on its own schedule: wait for it, with a deadline.
    deadline = time.monotonic() + TIMEOUT
    while vault.events.subscribers and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    assert vault.events.subscribers == 0


def test_community_edition_mode_answers_404_unsupported_path() -> None:
    with VaultEmulator(enterprise_events=False) as vault, open_socket(vault, "kv*", vault.root_token) as ws:
        assert ws.status == 404
        assert "unsupported path" in json.loads(ws.body())["errors"][0]
