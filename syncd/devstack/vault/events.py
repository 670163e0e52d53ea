"""Vault Enterprise event notifications for the emulator: the KV events and their WebSocket.

Real Vault (Enterprise 1.16+, verified against hashicorp/vault ``http/events.go``,
``vault/eventbus/bus.go`` and hashicorp/vault-plugin-secrets-kv):

- The KV plugin publishes an event after each successful change: KV v2 ``data-write``,
  ``data-patch``, ``data-delete``, ``delete``, ``undelete``, ``destroy``, ``metadata-write``,
  ``metadata-patch``, ``metadata-delete``, ``config-write``; KV v1 ``write``, ``delete``. The event
  type is ``kv-v{1,2}/<operation>``. Metadata values are all strings: ``operation``, ``modified``
  (``"true"``), ``path`` (the request path, e.g. ``secret/delete/app``) and, for the writes,
  ``data_path`` (``secret/data/app``; deletes, destroys and KV v1 deletes have none), plus
  ``current_version``/``oldest_version`` and ``deleted_versions``/``undeleted_versions``/
  ``destroyed_versions`` (a JSON list as a string) where the plugin adds them. The bus prefixes
  ``path`` and ``data_path`` with the mount. No secret value is ever part of an event.
- ``GET /v1/sys/events/subscribe/{event_type}?json=true`` (``filter=``, ``namespaces=``): the token
  needs ``read`` on that path (else 403 ``{"errors":["permission denied"]}`` before the upgrade);
  400 for an empty event type or a bad ``json`` value. After the upgrade each event is one text
  message: a CloudEvents object (``{"id", "source", "specversion", "type": "*", "data": {"event":
  {"id", "metadata"}, "event_type", "plugin_info"}, "datacontentype", "time"}``). A non-root token
  gets only events that have a ``data_path`` it holds ``subscribe`` on. A filter go-bexpr cannot
  parse closes the socket at once with 1003 ``Error subscribing``.
- Community Edition and OpenBao have no such endpoint: the request falls through to ``sys/`` and
  answers 404 ``unsupported path``.

The emulator models Enterprise by default (``VaultEmulator(enterprise_events=True)``, as HCP Vault
Dedicated would be), because that is where a subscriber can be tested; ``False`` gives the
Community Edition answer. Not modelled: ``subscribe_event_types`` in policies (every type is
allowed where ``subscribe`` is), namespaces (``namespaces=`` is accepted and ignored, events are in
the root namespace), the ``vault_index`` metadata, the 30 s server pings, the protobuf (binary)
form without ``json=true`` (answered 400 here), and the 5-minute token revalidation (here: the token is checked at each
event; a revoked or expired one closes the socket). Filters: only ``and``-joined comparisons
``field == value`` / ``field != value`` (value quoted or bare) on ``data_path``, ``event_type``,
``operation``, ``source_plugin_mount`` and ``namespace``; anything else (``or``, ``not``, ``in``,
``matches``, parentheses) is treated like a filter Vault cannot parse.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import queue
import re
import socket
import struct
import threading
import uuid
from dataclasses import dataclass
from io import BufferedIOBase
from typing import TYPE_CHECKING, Any

from syncd.devstack.httpkit import Request, Response
from syncd.devstack.vault.routing import DELETE, PATCH, WRITE, Call
from syncd.devstack.vault.wire import VaultError, error_response, parse_bool, rfc3339

if TYPE_CHECKING:
    from syncd.devstack.vault.state import Mount, VaultState
    from syncd.devstack.vault.tokens import Token

SUBSCRIBE_PREFIX = "sys/events/subscribe/"
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_UNSUPPORTED_DATA = 1000, 1001, 1003
MAX_CLIENT_FRAME = 1 << 16  # the endpoint expects no data from clients; control frames are tiny
FILTER_FIELDS = frozenset({"data_path", "event_type", "operation", "source_plugin_mount", "namespace"})

_KV2_ROUTES = {  # (first segment, operation) -> (event operation, data_path segment or None)
    ("data", WRITE): ("data-write", "data"),
    ("data", PATCH): ("data-patch", "data"),
    ("data", DELETE): ("data-delete", None),
    ("delete", WRITE): ("delete", None),
    ("undelete", WRITE): ("undelete", "data"),
    ("destroy", WRITE): ("destroy", None),
    ("metadata", WRITE): ("metadata-write", "metadata"),
    ("metadata", PATCH): ("metadata-patch", "metadata"),
    ("metadata", DELETE): ("metadata-delete", None),
}
_VERSIONS_FIELD = {"delete": "deleted_versions", "undelete": "undeleted_versions", "destroy": "destroyed_versions"}


# -- WebSocket framing (RFC 6455) ------------------------------------------------------------------


def accept_value(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()  # noqa: S324


def encode_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One final, unmasked frame (servers never mask)."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        return head + bytes([size]) + payload
    if size < 1 << 16:
        return head + bytes([126]) + struct.pack("!H", size) + payload
    return head + bytes([127]) + struct.pack("!Q", size) + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()[:123]


def read_frame(stream: BufferedIOBase, limit: int = MAX_CLIENT_FRAME) -> tuple[int, bytes]:
    """``(opcode, payload)`` of the next frame, unmasked; EOFError when the stream ends."""

    def exactly(count: int) -> bytes:
        data = stream.read(count)
        if data is None or len(data) < count:
            raise EOFError
        return data

    first, second = exactly(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", exactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", exactly(8))[0]
    if size > limit:
        raise EOFError
    mask = exactly(4) if second & 0x80 else b""
    payload = exactly(size) if size else b""
    if mask:
        payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return first & 0x0F, payload


# -- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KvEvent:
    event_type: str  # "kv-v2/data-write"
    metadata: dict[str, str]
    mount_path: str  # "secret/"
    mount_accessor: str


def kv_event(call: Call, mount: Mount, response: Response) -> KvEvent | None:
    """The event the KV plugin publishes for a handled request, or None (reads, failures, others)."""
    if mount.type != "kv" or response.status >= 400 or call.operation not in (WRITE, PATCH, DELETE):
        return None
    prefix = mount.path.rstrip("/")
    version = (mount.options or {}).get("version", "1")
    extra: dict[str, str] = {}
    data_path: str | None
    if version == "2":
        segment, _, key = call.path.partition("/")
        if call.path == "config" and call.operation == WRITE:
            operation, data_path, key = "config-write", "config", ""
        else:
            route = _KV2_ROUTES.get((segment, call.operation))
            if route is None or not key:
                return None
            operation, data_segment = route
            data_path = f"{data_segment}/{key}" if data_segment else None
            extra = _version_fields(mount, key, operation, call.data)
        path = call.path
    else:
        if not call.path or call.operation == PATCH:
            return None
        operation = "write" if call.operation == WRITE else "delete"
        path, data_path = call.path, (call.path if call.operation == WRITE else None)
    metadata = {"modified": "true", "operation": operation, "path": f"{prefix}/{path}", **extra}
    if data_path is not None:
        metadata["data_path"] = f"{prefix}/{data_path}"
    return KvEvent(f"kv-v{version}/{operation}", metadata, mount.path, mount.accessor)


def _version_fields(mount: Mount, key: str, operation: str, data: dict[str, Any]) -> dict[str, str]:
    if operation.startswith("metadata-") or operation == "config-write":
        return {}
    record = getattr(mount.backend, "keys", {}).get(key)
    fields: dict[str, str] = {}
    if record is not None:
        fields = {"current_version": str(record.current_version), "oldest_version": str(record.oldest_version)}
    if operation in _VERSIONS_FIELD:
        versions = data.get("versions")
        listed = versions if isinstance(versions, list) else [versions] if versions is not None else []
        fields[_VERSIONS_FIELD[operation]] = json.dumps([int(v) for v in listed if str(v).isdigit()])
    return fields


def cloud_event(event: KvEvent, now: float, node_id: str) -> dict[str, Any]:
    """The message ``json=true`` subscribers get (Vault's ``cloudevents-json`` format)."""
    return {
        "id": str(uuid.uuid4()),
        "source": f"vault://{node_id}",
        "specversion": "1.0",
        "type": "*",
        "data": {
            "event": {"id": str(uuid.uuid4()), "metadata": dict(event.metadata)},
            "event_type": event.event_type,
            "plugin_info": {
                "mount_class": "secret",
                "mount_accessor": event.mount_accessor,
                "mount_path": event.mount_path,
                "plugin": "kv",
            },
        },
        "datacontentype": "application/cloudevents",
        "time": rfc3339(now),
    }


# -- filters ---------------------------------------------------------------------------------------

_CLAUSE = re.compile(r'^\s*(?P<field>[a-z_]+)\s*(?P<op>==|!=)\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s"()]+))\s*$')


@dataclass(frozen=True)
class EventFilter:
    """The ``and``-joined ``field ==|!= value`` subset of go-bexpr (see the module docstring)."""

    clauses: tuple[tuple[str, bool, str], ...] = ()  # (field, equal?, value)

    @classmethod
    def parse(cls, text: str) -> EventFilter:
        """Raises ValueError for anything outside the subset."""
        if not text.strip():
            return cls()
        clauses = []
        for part in re.split(r"\s+and\s+", text.strip()):
            found = _CLAUSE.match(part)
            if found is None or found["field"] not in FILTER_FIELDS:
                raise ValueError("unsupported filter")
            value = found["quoted"] if found["quoted"] is not None else found["bare"]
            clauses.append((found["field"], found["op"] == "==", value))
        return cls(tuple(clauses))

    def matches(self, datum: dict[str, str]) -> bool:
        return all((datum.get(field, "") == value) == equal for field, equal, value in self.clauses)


def _datum(event: KvEvent) -> dict[str, str]:
    return {
        "data_path": event.metadata.get("data_path", ""),
        "event_type": event.event_type,
        "operation": event.metadata.get("operation", ""),
        "source_plugin_mount": event.mount_path,
        "namespace": "",
    }


# -- subscriptions ---------------------------------------------------------------------------------


class _Subscription:
    """One WebSocket: what it wants, its outbox, and the socket it is served on."""

    def __init__(self, pattern: str, event_filter: EventFilter, token_id: str, is_root: bool) -> None:
        self.pattern = pattern
        self.filter = event_filter
        self.token_id = token_id
        self.is_root = is_root
        self.outbox: queue.Queue[bytes | None] = queue.Queue()
        self.sock: socket.socket | None = None
        self.closing = threading.Event()
        self.close_code = CLOSE_NORMAL
        self.abrupt = False
        self._send_lock = threading.Lock()

    def send(self, frame: bytes) -> bool:
        if self.sock is None:
            return False
        with self._send_lock:
            try:
                self.sock.sendall(frame)
                return True
            except OSError:
                return False

    def end(self, code: int = CLOSE_NORMAL, *, abrupt: bool = False) -> None:
        """Ask the serving thread to close (with a close frame, or by cutting the connection)."""
        self.close_code, self.abrupt = code, abrupt
        self.closing.set()
        self.outbox.put(None)
        if abrupt and self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)


class EventBus:
    """Subscriptions and publishing; the server calls ``publish`` with its lock held."""

    def __init__(self, state: VaultState, *, node_id: str | None = None) -> None:
        self.state = state
        self.node_id = node_id or f"vault-{uuid.uuid4().hex[:8]}"
        self._subscriptions: set[_Subscription] = set()
        self._lock = threading.Lock()
        self.published: list[dict[str, Any]] = []  # every event, for tests (metadata only: no values)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def publish(self, call: Call, mount: Mount, response: Response) -> None:
        event = kv_event(call, mount, response)
        if event is None:
            return
        message = cloud_event(event, self.state.clock.now(), self.node_id)
        self.published.append(message)
        frame = encode_frame(OP_TEXT, json.dumps(message, separators=(",", ":")).encode())
        datum = _datum(event)
        with self._lock:
            subscriptions = list(self._subscriptions)
        for sub in subscriptions:
            if not fnmatch.fnmatchcase(event.event_type, sub.pattern) or not sub.filter.matches(datum):
                continue
            token = self.state.tokens.valid(sub.token_id, self.state.clock.now())
            if token is None:
                sub.end(CLOSE_NORMAL)
            elif self._allowed(sub, token, event):
                sub.outbox.put(frame)

    def _allowed(self, sub: _Subscription, token: Token, event: KvEvent) -> bool:
        if sub.is_root:
            return True
        data_path = event.metadata.get("data_path")
        return bool(data_path) and self.state.acl_for(token).allows(data_path or "", "subscribe")

    def drop_all(self, *, abrupt: bool = True) -> int:
        """End every subscription (cut the connections, or close them properly); how many."""
        with self._lock:
            subscriptions = list(self._subscriptions)
        for sub in subscriptions:
            sub.end(CLOSE_GOING_AWAY, abrupt=abrupt)
        return len(subscriptions)

    def close(self) -> None:
        self.drop_all(abrupt=False)

    # -- the endpoint --------------------------------------------------------------------------

    def subscribe_response(self, request: Request, pattern: str, token: Token) -> Response:
        """The handshake answer (the caller has checked the token and its ``read`` capability)."""
        pattern = pattern.strip()
        if not pattern:
            raise VaultError(400, "did not specify eventType to subscribe to")
        raw_json = request.query_value("json") or ""
        if raw_json and raw_json.lower() not in ("1", "t", "true", "0", "f", "false"):
            raise VaultError(400, f"invalid parameter for JSON: {raw_json}")
        if not parse_bool(raw_json or "false"):
            raise VaultError(400, "the emulator serves events only with json=true")
        key = request.header("sec-websocket-key") or ""
        upgrade = (request.header("upgrade") or "").lower()
        connection = (request.header("connection") or "").lower()
        if upgrade != "websocket" or "upgrade" not in [part.strip() for part in connection.split(",")]:
            return error_response(426, "WebSocket protocol violation: upgrade required")
        if request.header("sec-websocket-version") != "13" or len(base64.b64decode(key + "==")) != 16:
            return error_response(400, "WebSocket protocol violation: bad Sec-WebSocket-Key or version")
        try:
            event_filter: EventFilter | None = EventFilter.parse(request.query_value("filter") or "")
        except ValueError:
            event_filter = None  # Vault upgrades first, then fails to subscribe
        sub = _Subscription(pattern, event_filter or EventFilter(), token.id, token.is_root)

        def serve(sock: socket.socket, reader: BufferedIOBase) -> None:
            sub.sock = sock
            if event_filter is None:
                sub.send(encode_frame(OP_CLOSE, close_payload(CLOSE_UNSUPPORTED_DATA, "Error subscribing")))
                return
            self._serve(sub, reader)

        if event_filter is not None:
            # Live before the 101 goes out, so a client that saw the upgrade misses no event (real
            # Vault subscribes just after the upgrade: tests would race against that gap).
            with self._lock:
                self._subscriptions.add(sub)
        headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": accept_value(key)}
        return Response(101, b"", headers, upgrade=serve)

    def _serve(self, sub: _Subscription, reader: BufferedIOBase) -> None:
        threading.Thread(target=self._read_client, args=(sub, reader), name="vault-events-read", daemon=True).start()
        try:
            while not sub.closing.is_set():
                frame = sub.outbox.get()
                if frame is None or not sub.send(frame):
                    break
            if not sub.abrupt:
                sub.send(encode_frame(OP_CLOSE, close_payload(sub.close_code)))
        finally:
            with self._lock:
                self._subscriptions.discard(sub)
            sub.closing.set()

    @staticmethod
    def _read_client(sub: _Subscription, reader: BufferedIOBase) -> None:
        """Answer pings, echo a close; data from the client is ignored (Vault expects none)."""
        try:
            while not sub.closing.is_set():
                opcode, payload = read_frame(reader)
                if opcode == OP_PING:
                    sub.send(encode_frame(OP_PONG, payload))
                elif opcode == OP_CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else CLOSE_NORMAL
                    sub.end(code)
                    return
        except (EOFError, OSError, ValueError):
            sub.end(CLOSE_GOING_AWAY, abrupt=True)


def subscribe_pattern(path: str) -> str | None:
    """The event type pattern of a subscribe path (``sys/events/subscribe/kv*``), else None."""
    return path[len(SUBSCRIBE_PREFIX) :] if path.startswith(SUBSCRIBE_PREFIX) else None


__all__ = [
    "EventBus",
    "EventFilter",
    "KvEvent",
    "accept_value",
    "cloud_event",
    "encode_frame",
    "kv_event",
    "read_frame",
    "subscribe_pattern",
]
