"""Audit devices for the Vault emulator: ``sys/audit``, ``sys/audit-hash`` and the ``socket`` and
``file`` devices, which is how a Vault of any edition tells an outside process about every request.

Verified against hashicorp/vault (``vault/audit.go``, ``vault/logical_system.go``,
``audit/types.go``, ``audit/entry_formatter.go``, ``audit/backend_socket.go``,
``audit/sink_socket.go``):

- ``PUT|POST sys/audit/<path>`` ``{"type", "description", "options": {str: str}, "local"}`` (sudo);
  a path that overlaps an enabled one is 400 ``path already in use``, an unknown type 400
  ``unknown backend type: "<type>"``. ``GET sys/audit`` (sudo) lists ``{"<path>/": {"path", "type",
  "description", "options", "local"}}``, in ``data`` and repeated at the top level (the path is in
  Vault's ``injectDataIntoTopRoutes``). ``DELETE sys/audit/<path>`` (sudo) is 204, also when
  nothing is enabled there. ``POST sys/audit-hash/<path> {"input"}`` answers ``{"hash"}``.
- Every request produces a ``"request"`` entry before it is handled and a ``"response"`` entry
  after, each one compact JSON object plus a newline (Go's ``json.Encoder``). String values in
  ``request.data``, ``response.data``, tokens and accessors are ``hmac-sha256:<hex>`` with a salt
  per device, unless the device has ``log_raw=true`` (``hmac_accessor=false`` keeps accessors
  plain). A handler's error becomes the entry's ``error`` text. The namespace is ``{"id": "root"}``.
- A wrapped response's entry carries ``wrap_info`` (token and accessors hashed) instead of the
  data, and its request entry the ``wrap_ttl`` asked for (``audit/types.go`` ``wrap_ttl``,
  ``wrap_info``).
- Enabling sends a test probe (a ``"request"`` entry, operation ``update``, path
  ``sys/audit/test``) unless ``options.skip_test`` is ``"true"``.
- The socket device dials lazily (``socket_type`` ``tcp`` or ``unix``, ``write_timeout`` default
  ``2s``), keeps the connection, and on a failed write reconnects and retries that entry once.

Emulator shortcuts (documented differences):

- Entries are written by one background thread per device, so the emulator's lock is never held
  during network or file I/O, and a failed write drops the entry (``AuditDevice.dropped``).
  Real Vault writes synchronously and refuses the request with 500 when *no* device could write
  it; set ``AuditBroker.fail_closed = True`` to refuse requests (500 ``internal error``) while
  every enabled device's last write failed. Vault also fails the enable when the test probe cannot
  be written; the emulator sends the probe in the background and never fails the enable.
- Only requests that reach a handler are audited (not requests refused by the seal, the token or
  ACL check), and ``sys/health``, ``sys/seal-status`` and ``sys/unseal`` never are (raw HTTP
  handlers in Vault). ``remote_address`` is always ``127.0.0.1``.
- ``file_path`` ``"stdout"`` writes to the process's stdout, ``"discard"`` writes nothing; other
  options (``format``, ``prefix``, ``elide_list_responses``...) are stored; only ``prefix`` is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import queue
import secrets
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.routing import DELETE, LIST, PATCH, READ, WRITE, Call, LogicalRouter
from syncd.devstack.vault.state import RUNNING_PLUGIN_VERSIONS, VaultState
from syncd.devstack.vault.sys_seal import SEALED_OK_PATHS
from syncd.devstack.vault.wire import VaultError, envelope, json_response, no_content, rfc3339
from syncd.devstack.vault.wrapping import requested_wrap_ttl

HMAC_PREFIX = "hmac-sha256:"
QUEUE_LIMIT = 10_000
DEFAULT_WRITE_TIMEOUT = 2.0
INTERNAL_ERROR = "internal error"
_TRUE = ("1", "t", "true", "T", "TRUE", "True")


def _parse_seconds(text: str) -> float:
    """Go durations as the socket device takes them (``2s``, ``500ms``, ``1m``), or plain seconds."""
    text = text.strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


class _Sink:
    """Writes queued lines from its own thread; never blocks the caller, drops when it cannot write."""

    def __init__(self, name: str) -> None:
        self.healthy = True  # the last write succeeded (or none was tried)
        self.written = 0
        self.dropped = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_LIMIT)
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name=f"vault-audit-{name}", daemon=True)
        self._thread.start()

    def submit(self, line: bytes) -> None:
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self._settle(written=False)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every submitted line was written or dropped."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            line = self._queue.get()
            if line is None:
                break
            self._settle(written=self._write(line))
        self._release()

    def _settle(self, *, written: bool) -> None:
        with self._idle:
            self.healthy = written
            if written:
                self.written += 1
            else:
                self.dropped += 1
            self._pending -= 1
            self._idle.notify_all()

    def _write(self, line: bytes) -> bool:
        raise NotImplementedError

    def _release(self) -> None:
        """Close whatever the sink holds open."""


class _SocketSink(_Sink):
    """Vault's socket sink: a lazily dialled, persistent connection; one reconnect per failed write."""

    def __init__(self, name: str, address: str, socket_type: str, timeout: float) -> None:
        self._address = address
        self._socket_type = socket_type
        self._timeout = timeout
        self._conn: socket.socket | None = None
        super().__init__(name)

    def _dial(self) -> socket.socket:
        if self._socket_type == "unix":
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(self._timeout)
            conn.connect(self._address)
            return conn
        host, _, port = self._address.rpartition(":")
        return socket.create_connection((host.strip("[]"), int(port)), timeout=self._timeout)

    def _write(self, line: bytes) -> bool:
        for _ in range(2):
            try:
                if self._conn is None:
                    self._conn = self._dial()
                self._conn.sendall(line)
                return True
            except (OSError, ValueError):
                self._release()
        return False

    def _release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None


class _FileSink(_Sink):
    def __init__(self, name: str, file_path: str) -> None:
        self._file_path = file_path
        self._file: BinaryIO | None = None
        super().__init__(name)

    def _write(self, line: bytes) -> bool:
        if self._file_path == "discard":
            return True
        try:
            if self._file_path == "stdout":
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
                return True
            if self._file is None:
                self._file = open(self._file_path, "ab")  # noqa: SIM115 - held open across writes, like Vault
            self._file.write(line)
            self._file.flush()
            return True
        except (OSError, ValueError, AttributeError):
            return False

    def _release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class AuditDevice:
    """One enabled audit device (``path`` ends with a slash)."""

    path: str
    type: str
    description: str
    options: dict[str, str]
    local: bool
    sink: _Sink
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @property
    def raw(self) -> bool:
        return self.options.get("log_raw", "") in _TRUE

    @property
    def dropped(self) -> int:
        return self.sink.dropped

    @property
    def written(self) -> int:
        return self.sink.written

    def hash(self, value: str) -> str:
        return HMAC_PREFIX + hmac.new(self.salt, value.encode(), hashlib.sha256).hexdigest()

    def hash_all(self, value: Any) -> Any:
        """Every string inside ``value`` HMAC'd, as Vault's ``hashstructure`` walk does."""
        if self.raw:
            return value
        if isinstance(value, str):
            return self.hash(value)
        if isinstance(value, dict):
            return {key: self.hash_all(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.hash_all(item) for item in value]
        return value

    def hash_accessor(self, value: str) -> str:
        if self.raw or not value or self.options.get("hmac_accessor", "true") not in _TRUE:
            return value
        return self.hash(value)

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.type,
            "description": self.description,
            "options": dict(self.options),
            "local": self.local,
        }


def _sink_for(path: str, device_type: str, options: dict[str, str]) -> _Sink:
    if device_type == "socket":
        address = options.get("address", "").strip()
        if not address:
            raise VaultError(400, '"address" is required' if "address" not in options else '"address" cannot be empty')
        socket_type = options.get("socket_type", "tcp")
        if socket_type not in ("tcp", "unix"):
            raise VaultError(400, f"the emulator's socket device supports tcp and unix, not {socket_type!r}")
        if socket_type == "tcp" and not address.rpartition(":")[2].isdigit():
            raise VaultError(400, f"address {address!r} is not HOST:PORT")
        try:
            timeout = _parse_seconds(options.get("write_timeout", "2s"))
        except ValueError:
            raise VaultError(400, "write_timeout is not a duration") from None
        return _SocketSink(path, address, socket_type, timeout)
    file_path = options.get("file_path", options.get("path", ""))
    if not file_path:
        raise VaultError(400, '"file_path" is required')
    return _FileSink(path, file_path)


@dataclass(frozen=True)
class _MountInfo:
    point: str
    type: str
    accessor: str
    running_version: str


@dataclass(frozen=True)
class _Audited:
    """What the request and response entries of one call share."""

    call: Call
    operation: str
    request_id: str
    mount: _MountInfo


class AuditBroker:
    """The enabled devices and the hooks the server calls around each handled request."""

    def __init__(self, state: VaultState) -> None:
        self.state = state
        self.devices: dict[str, AuditDevice] = {}
        self.fail_closed = False

    # -- devices ----------------------------------------------------------------------------

    def enable(self, path: str, device_type: str, options: dict[str, str], description: str, local: bool) -> None:
        path = path.strip("/") + "/"
        if path == "/":
            raise VaultError(400, "backend path must be specified")
        for taken in self.devices:
            if taken.startswith(path) or path.startswith(taken):
                raise VaultError(400, "path already in use")
        if device_type not in ("socket", "file"):
            raise VaultError(400, f'unknown backend type: "{device_type}"')
        device = AuditDevice(path, device_type, description, options, local, _sink_for(path, device_type, options))
        self.devices[path] = device
        if options.get("skip_test", "") not in _TRUE:
            request = {"id": str(uuid.uuid4()), "operation": "update", "path": "sys/audit/test"}
            self._emit(device, {"time": rfc3339(self.state.clock.now()), "type": "request", "request": request})

    def disable(self, path: str) -> None:
        device = self.devices.pop(path.strip("/") + "/", None)
        if device is not None:
            # Joining the sender can wait on the network: not under the emulator's lock.
            threading.Thread(target=device.sink.close, name="vault-audit-close", daemon=True).start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop every device's sender (what the emulator's ``stop()`` calls)."""
        devices, self.devices = list(self.devices.values()), {}
        for device in devices:
            device.sink.close(timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every device has written (or dropped) everything submitted so far."""
        return all(device.sink.wait_idle(timeout) for device in list(self.devices.values()))

    # -- the request hook -------------------------------------------------------------------

    def run(self, call: Call, handler: Callable[[Call], Response], *, exists: bool | None) -> Response:
        """Audit the request, run the handler, audit the response (or the error it raised)."""
        devices = list(self.devices.values())
        if not devices or call.full_path.rstrip("/") in SEALED_OK_PATHS:
            return handler(call)
        if self.fail_closed and not any(device.sink.healthy for device in devices):
            raise VaultError(500, INTERNAL_ERROR)
        audited = _Audited(call, _audit_operation(call.operation, exists), str(uuid.uuid4()), self._mount_info(call))
        for device in devices:
            self._emit(device, self._entry(device, "request", audited))
        try:
            response = handler(call)
        except VaultError as error:
            for device in devices:
                self._emit(device, self._entry(device, "response", audited, error="\n".join(error.messages)))
            raise
        body = _json_body(response)
        errors = body.get("errors") if response.status >= 400 else None
        error_text = "\n".join(str(e) for e in errors) if isinstance(errors, list) and errors else None
        for device in devices:
            self._emit(device, self._entry(device, "response", audited, error=error_text, body=body))
        return response

    # -- entries ----------------------------------------------------------------------------

    def _mount_info(self, call: Call) -> _MountInfo:
        path = call.full_path
        if path.startswith("sys/"):
            return _MountInfo("sys/", "system", "system_00000000", "v0.0.0+builtin.vault")
        if path.startswith("auth/token/"):
            return _MountInfo("auth/token/", "token", "auth_token_00000000", "v0.0.0+builtin.vault")
        is_auth = path.startswith("auth/")
        mount = (self.state.auth_mounts if is_auth else self.state.secret_mounts).get(call.mount_path)
        if mount is None:
            return _MountInfo("", "", "", "")
        version = RUNNING_PLUGIN_VERSIONS.get(mount.type, "v0.0.0+builtin")
        return _MountInfo(("auth/" if is_auth else "") + mount.path, mount.type, mount.accessor, version)

    def _entry(
        self,
        device: AuditDevice,
        kind: str,
        audited: _Audited,
        *,
        error: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        call, mount = audited.call, audited.mount
        token = call.token
        auth: dict[str, Any] = {}
        if token is not None:
            auth = {
                "client_token": device.hash_all(token.id),
                "accessor": device.hash_accessor(token.accessor),
                "display_name": token.display_name,
                "policies": list(token.policies),
                "token_policies": list(token.policies),
                "metadata": device.hash_all(token.meta) if token.meta else None,
                "entity_id": token.entity_id,
                "token_type": "service",
                "token_ttl": token.ttl,
            }
        request: dict[str, Any] = {
            "id": audited.request_id,
            "operation": audited.operation,
            "mount_point": mount.point,
            "mount_type": mount.type,
            "mount_accessor": mount.accessor,
            "mount_running_version": mount.running_version,
            "mount_class": _mount_class(mount),
            "namespace": {"id": "root"},
            "path": call.full_path,
            "data": device.hash_all(call.data) if call.data else None,
            "remote_address": "127.0.0.1",
            "wrap_ttl": requested_wrap_ttl(call.request),
        }
        if token is not None:
            request["client_token"] = device.hash_all(token.id)
            request["client_token_accessor"] = device.hash_accessor(token.accessor)
        entry: dict[str, Any] = {
            "time": rfc3339(self.state.clock.now()),
            "type": kind,
            "auth": _compact(auth),
            "request": _compact(request),
        }
        if kind == "response":
            entry["response"] = _compact(self._response_block(device, mount, body or {}))
        if error:
            entry["error"] = error
        return _compact(entry)

    @staticmethod
    def _response_block(device: AuditDevice, mount: _MountInfo, body: dict[str, Any]) -> dict[str, Any]:
        block: dict[str, Any] = {
            "mount_point": mount.point,
            "mount_type": mount.type,
            "mount_accessor": mount.accessor,
            "mount_running_plugin_version": mount.running_version,
        }
        data = body.get("data")
        if isinstance(data, dict) and data:
            block["data"] = device.hash_all(data)
        auth = body.get("auth")
        if isinstance(auth, dict):
            hashed = dict(auth)
            hashed["client_token"] = device.hash_all(str(auth.get("client_token", "")))
            hashed["accessor"] = device.hash_accessor(str(auth.get("accessor", "")))
            block["auth"] = _compact(hashed)
        wrap_info = body.get("wrap_info")
        if isinstance(wrap_info, dict):
            hashed_wrap = dict(wrap_info)
            hashed_wrap["token"] = device.hash_all(str(wrap_info.get("token", "")))
            hashed_wrap["accessor"] = device.hash_accessor(str(wrap_info.get("accessor", "")))
            if wrap_info.get("wrapped_accessor"):
                hashed_wrap["wrapped_accessor"] = device.hash_accessor(str(wrap_info["wrapped_accessor"]))
            block["wrap_info"] = hashed_wrap
        if body.get("warnings"):
            block["warnings"] = body["warnings"]
        return block

    @staticmethod
    def _emit(device: AuditDevice, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        device.sink.submit((device.options.get("prefix", "") + line).encode())


def _audit_operation(operation: str, exists: bool | None) -> str:
    """Vault's logical operation: a write is ``create`` when the existence check says it is new."""
    if operation == WRITE:
        return "create" if exists is False else "update"
    return {READ: "read", LIST: "list", DELETE: "delete", PATCH: "patch"}.get(operation, operation)


def _mount_class(mount: _MountInfo) -> str:
    if mount.point.startswith("auth/"):
        return "auth"
    return "secret" if mount.type in ("kv", "database") else ""


def _json_body(response: Response) -> dict[str, Any]:
    try:
        parsed = json.loads(response.body) if response.body else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _compact(value: dict[str, Any]) -> dict[str, Any]:
    """Drop empty fields, as Go's ``omitempty`` does."""
    return {key: item for key, item in value.items() if item not in (None, "", {}, [], False)}


# -- sys/audit routes ----------------------------------------------------------------------------


def register_audit_routes(router: LogicalRouter, broker: AuditBroker) -> None:
    def with_top_level(data: dict[str, Any]) -> Response:
        body = envelope(data)
        return json_response(200, {**body["data"], **body})

    def list_devices(call: Call) -> Response:
        return with_top_level({path: device.describe() for path, device in broker.devices.items()})

    def device(call: Call) -> Response:
        path = call.params["path"]
        if call.operation == DELETE:
            broker.disable(path)
            return no_content()
        options = call.get("options") or {}
        if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
            raise VaultError(400, "options must be string valued")
        local = call.get("local", False)
        broker.enable(
            path,
            str(call.get("type") or ""),
            {str(k): v for k, v in options.items()},
            str(call.get("description") or ""),
            local is True or str(local).lower() == "true",
        )
        return no_content()

    def audit_hash(call: Call) -> Response:
        found = broker.devices.get(call.params["path"].strip("/") + "/")
        text = call.get("input")
        if not isinstance(text, str) or not text:
            raise VaultError(400, 'the "input" parameter is empty')
        if found is None:
            raise VaultError(400, "unknown audit backend")
        return with_top_level({"hash": found.hash(text)})

    router.add([READ], "sys/audit", list_devices, sudo=True)
    router.add([WRITE, DELETE], "sys/audit/(?P<path>.+)", device, sudo=True)
    router.add([WRITE], "sys/audit-hash/(?P<path>.+)", audit_hash)


__all__ = ["AuditBroker", "AuditDevice", "register_audit_routes"]
