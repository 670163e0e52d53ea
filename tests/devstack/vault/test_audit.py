"""The emulator's audit devices: sys/audit management and the entries a socket device streams."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest

from syncd.devstack.vault import VaultEmulator
from tests.devstack.vault.conftest import token_with_policy

CANARY = "canary-audit-7f3b9e"
DEADLINE = 10.0


class LineCollector:
    """A TCP server that records every line it receives (and the raw bytes), connection by connection."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)
        self.port = int(self._server.getsockname()[1])
        self.raw = bytearray()
        self.lines: list[dict[str, Any]] = []
        self.connections = 0
        self._open: list[socket.socket] = []
        self._changed = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._changed:
                self.connections += 1
                self._open.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            with self._changed:
                self.raw += chunk
                self.lines.extend(json.loads(line) for line in complete if line)
                self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = DEADLINE) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.lines), timeout)

    def drop_connections(self) -> None:
        with self._changed:
            for conn in self._open:
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._open.clear()

    def close(self) -> None:
        self._stopping = True
        self.drop_connections()
        self._server.close()
        self._thread.join(5)


@pytest.fixture
def collector() -> Iterator[LineCollector]:
    server = LineCollector()
    yield server
    server.close()


def _enable_socket(
    root: hvac.Client, address: str, path: str = "syncd", description: str | None = None, **options: str
) -> None:
    root.sys.enable_audit_device(
        "socket", path=path, description=description, options={"address": address, "socket_type": "tcp", **options}
    )


def _entries_for(lines: list[dict[str, Any]], path: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [
        line
        for line in lines
        if line.get("request", {}).get("path") == path and (kind is None or line.get("type") == kind)
    ]


# -- sys/audit -----------------------------------------------------------------------------------


def test_enabled_devices_are_listed_in_data_and_at_the_top_level(root: hvac.Client, collector: LineCollector) -> None:
    root.sys.enable_audit_device("file", path="file", options={"file_path": "discard"})
    _enable_socket(root, collector.address, description="syncd notifications")

    listed = root.sys.list_enabled_audit_devices()

    assert set(listed["data"]) == {"file/", "syncd/"}
    assert listed["syncd/"] == listed["data"]["syncd/"]
    assert listed["data"]["syncd/"] == {
        "path": "syncd/",
        "type": "socket",
        "description": "syncd notifications",
        "options": {"address": collector.address, "socket_type": "tcp"},
        "local": False,
    }


def test_disabling_removes_the_device_and_disabling_nothing_is_fine(root: hvac.Client) -> None:
    root.sys.enable_audit_device("file", path="file", options={"file_path": "discard"})

    assert root.sys.disable_audit_device("file").status_code == 204
    assert root.sys.disable_audit_device("never-enabled").status_code == 204
    assert root.sys.list_enabled_audit_devices()["data"] == {}


def test_managing_audit_devices_needs_sudo(root: hvac.Client, client_for: Callable[[str | None], hvac.Client]) -> None:
    plain = token_with_policy(
        root, "audit-no-sudo", 'path "sys/audit*" { capabilities = ["create", "read", "update"] }'
    )
    sudo = token_with_policy(
        root, "audit-sudo", 'path "sys/audit*" { capabilities = ["create", "read", "update", "sudo"] }'
    )

    with pytest.raises(hvac.exceptions.Forbidden):
        client_for(plain).sys.list_enabled_audit_devices()
    with pytest.raises(hvac.exceptions.Forbidden):
        client_for(plain).sys.enable_audit_device("file", path="f", options={"file_path": "discard"})
    client_for(sudo).sys.enable_audit_device("file", path="f", options={"file_path": "discard"})
    assert "f/" in client_for(sudo).sys.list_enabled_audit_devices()["data"]


@pytest.mark.parametrize(
    ("device_type", "path", "options", "message"),
    [
        ("file", "file/nested", {"file_path": "discard"}, "path already in use"),
        ("syslog", "other", {}, 'unknown backend type: "syslog"'),
        ("socket", "other", {"socket_type": "tcp"}, '"address" is required'),
        ("file", "other", {}, '"file_path" is required'),
    ],
)
def test_invalid_devices_are_refused_with_vaults_messages(
    root: hvac.Client, device_type: str, path: str, options: dict[str, str], message: str
) -> None:
    root.sys.enable_audit_device("file", path="file", options={"file_path": "discard"})

    with pytest.raises(hvac.exceptions.InvalidRequest) as info:
        root.sys.enable_audit_device(device_type, path=path, options=options)

    assert info.value.errors == [message]


def test_audit_hash_matches_the_hmac_in_the_entries(root: hvac.Client, collector: LineCollector) -> None:
    _enable_socket(root, collector.address)
    root.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": CANARY})

    assert collector.wait_for(lambda lines: bool(_entries_for(lines, "secret/data/app/db", "response")))
    hashed = root.sys.calculate_hash("syncd", CANARY)["data"]["hash"]
    request = _entries_for(collector.lines, "secret/data/app/db", "request")[0]["request"]
    assert hashed.startswith("hmac-sha256:")
    assert request["data"]["data"]["password"] == hashed


# -- entries -------------------------------------------------------------------------------------


def test_a_write_streams_a_request_then_a_response_entry_with_hmaced_values(
    vault: VaultEmulator, root: hvac.Client, collector: LineCollector
) -> None:
    _enable_socket(root, collector.address)

    root.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": CANARY, "port": "5432"})
    root.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": CANARY + "-2"})

    assert collector.wait_for(lambda lines: len(_entries_for(lines, "secret/data/app/db")) == 4)
    entries = _entries_for(collector.lines, "secret/data/app/db")
    assert [e["type"] for e in entries] == ["request", "response", "request", "response"]
    assert [e["request"]["operation"] for e in entries] == ["create", "create", "update", "update"]
    first_request, first_response = entries[0], entries[1]
    assert first_request["request"]["id"] == first_response["request"]["id"]
    assert first_request["request"]["mount_type"] == "kv"
    assert first_request["request"]["mount_point"] == "secret/"
    assert first_request["request"]["namespace"] == {"id": "root"}
    assert first_request["request"]["client_token"].startswith("hmac-sha256:")
    assert first_request["auth"]["policies"] == ["root"]
    assert first_response["response"]["data"]["version"] == 1
    assert "error" not in first_response
    assert all(v.startswith("hmac-sha256:") for v in first_request["request"]["data"]["data"].values())
    assert CANARY.encode() not in collector.raw
    assert vault.root_token.encode() not in collector.raw


def test_reads_responses_are_hmaced_too(root: hvac.Client, collector: LineCollector) -> None:
    root.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": CANARY})
    _enable_socket(root, collector.address)

    root.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)

    assert collector.wait_for(lambda lines: bool(_entries_for(lines, "secret/data/app/db", "response")))
    response = _entries_for(collector.lines, "secret/data/app/db", "response")[0]
    assert response["request"]["operation"] == "read"
    assert response["response"]["data"]["data"]["password"].startswith("hmac-sha256:")
    assert CANARY.encode() not in collector.raw


def test_log_raw_sends_values_as_they_are(root: hvac.Client, collector: LineCollector) -> None:
    _enable_socket(root, collector.address, log_raw="true")

    root.secrets.kv.v1.create_or_update_secret(
        "app/legacy", secret={"password": "visible-in-raw-mode"}, mount_point="kv"
    )

    def writes(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in _entries_for(lines, "kv/app/legacy", "request") if e["request"]["operation"] == "create"]

    assert collector.wait_for(lambda lines: bool(writes(lines)))
    request = writes(collector.lines)[0]["request"]
    assert request["data"] == {"password": "visible-in-raw-mode"}


def test_a_handler_error_is_the_response_entrys_error(root: hvac.Client, collector: LineCollector) -> None:
    _enable_socket(root, collector.address)

    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.create_or_update_acl_policy(name="root", policy='path "x" { capabilities = ["read"] }')

    assert collector.wait_for(lambda lines: bool(_entries_for(lines, "sys/policies/acl/root", "response")))
    response = _entries_for(collector.lines, "sys/policies/acl/root", "response")[0]
    assert response["error"] == 'cannot update "root" policy'


def test_enabling_sends_a_test_probe_unless_skip_test(root: hvac.Client, collector: LineCollector) -> None:
    _enable_socket(root, collector.address, path="probed")
    _enable_socket(root, collector.address, path="quiet", skip_test="true")
    root.secrets.kv.v2.create_or_update_secret("marker", secret={"k": "v"})

    assert collector.wait_for(lambda lines: len(_entries_for(lines, "secret/data/marker", "response")) == 2)
    probes = _entries_for(collector.lines, "sys/audit/test")
    assert len(probes) == 1
    assert probes[0]["type"] == "request"
    assert probes[0]["request"]["operation"] == "update"


def test_one_connection_is_kept_for_many_entries(root: hvac.Client, collector: LineCollector) -> None:
    _enable_socket(root, collector.address)
    for index in range(5):
        root.secrets.kv.v2.create_or_update_secret(f"app/{index}", secret={"k": "v"})

    assert collector.wait_for(lambda lines: bool(_entries_for(lines, "secret/data/app/4", "response")))
    assert collector.connections == 1


def test_a_broken_connection_is_redialled(vault: VaultEmulator, root: hvac.Client, collector: LineCollector) -> None:
    _enable_socket(root, collector.address)
    root.secrets.kv.v2.create_or_update_secret("before", secret={"k": "v"})
    assert collector.wait_for(lambda lines: bool(_entries_for(lines, "secret/data/before", "response")))

    collector.drop_connections()
    # The first write after the peer closed can vanish in the kernel (as with real Vault); the
    # next one fails, and the device redials and retries it.
    attempts = 0
    while not _entries_for(collector.lines, "secret/data/after", "response") and attempts < 20:
        attempts += 1
        root.secrets.kv.v2.create_or_update_secret("after", secret={"k": str(attempts)})
        assert vault.audit.wait_idle(DEADLINE)

    assert _entries_for(collector.lines, "secret/data/after", "response")
    assert collector.connections == 2


def test_requests_succeed_and_entries_drop_while_nobody_listens(vault: VaultEmulator, root: hvac.Client) -> None:
    _enable_socket(root, _dead_address())

    root.secrets.kv.v2.create_or_update_secret("app/db", secret={"k": "v"})

    assert root.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)["data"]["data"] == {"k": "v"}
    assert vault.audit.wait_idle(DEADLINE)
    assert vault.audit.devices["syncd/"].dropped >= 3  # probe, request, response
    assert vault.audit.devices["syncd/"].written == 0


def _dead_address() -> str:
    closed = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    return address


def test_fail_closed_refuses_requests_while_every_device_is_down(vault: VaultEmulator, root: hvac.Client) -> None:
    _enable_socket(root, _dead_address())
    assert vault.audit.wait_idle(DEADLINE)  # the test probe was dropped: the device is down
    vault.audit.fail_closed = True

    with pytest.raises(hvac.exceptions.InternalServerError) as info:
        root.secrets.kv.v2.create_or_update_secret("app/db", secret={"k": "v"})

    assert info.value.errors == ["internal error"]


def test_fail_closed_serves_requests_while_another_device_writes(vault: VaultEmulator, root: hvac.Client) -> None:
    root.sys.enable_audit_device("file", path="file", options={"file_path": "discard"})
    _enable_socket(root, _dead_address())
    assert vault.audit.wait_idle(DEADLINE)
    vault.audit.fail_closed = True

    root.secrets.kv.v2.create_or_update_secret("app/db", secret={"k": "v"})

    assert root.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)["data"]["data"] == {"k": "v"}


def test_a_file_device_appends_entries_to_its_file(root: hvac.Client, tmp_path: Path, vault: VaultEmulator) -> None:
    log_file = tmp_path / "audit.log"
    root.sys.enable_audit_device("file", path="file", options={"file_path": str(log_file)})

    root.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": CANARY})

    assert vault.audit.wait_idle(DEADLINE)
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [line["type"] for line in _entries_for(lines, "secret/data/app/db")] == ["request", "response"]
    assert CANARY not in log_file.read_text()


def test_health_and_seal_status_are_not_audited(root: hvac.Client, collector: LineCollector) -> None:
    _enable_socket(root, collector.address)

    root.sys.read_health_status(method="GET")
    root.sys.read_seal_status()
    root.secrets.kv.v2.create_or_update_secret("marker", secret={"k": "v"})

    assert collector.wait_for(lambda lines: bool(_entries_for(lines, "secret/data/marker", "response")))
    audited = {line["request"]["path"] for line in collector.lines}
    assert "sys/health" not in audited
    assert "sys/seal-status" not in audited
