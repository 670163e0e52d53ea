"""What the socket audit device sends, read defensively: lines, entries, written paths, mappings.

Every line comes from a TCP peer that may not be Vault, so nothing here may raise on any input:
``parse_entry`` turns anything that is not a JSON object (invalid UTF-8, invalid JSON, nesting
deep enough to exhaust the recursion limit, ...) into None; ``LineReader`` keeps at most ``limit``
bytes of one line and drops the rest of it up to its newline.

An audit **entry** (``is_audit_entry``) is what Vault writes for every request and response
(``audit/entry_formatter.go`` in hashicorp/vault): a JSON object with ``"type"`` ``"request"`` or
``"response"``, a ``"time"`` string and a ``"request"`` object. A connection becomes a notification
source only once it sent one (``syncd.app.notify.audit``). With a ``prefix`` option on the device,
Vault writes that text right before the JSON (``strip_prefix``).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from syncd.config import Settings, VaultSource

MAX_LINE_BYTES = 64 * 1024  # Vault's entries are small; a longer "line" is garbage or an attack
WRITE_OPERATIONS = frozenset({"create", "update", "patch", "delete"})
KV2_WRITE_SEGMENTS = ("data", "metadata", "delete", "undelete", "destroy")


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

    @property
    def buffered(self) -> int:
        """Bytes of the current, unfinished line held (never more than ``limit``)."""
        return len(self._buffer)

    def rest(self) -> bytes:
        """What is left without a newline (at the end of the stream)."""
        rest = b"" if self._skipping else bytes(self._buffer)
        self._buffer.clear()
        self._skipping = False
        return rest

    def _take(self, piece: bytes) -> None:
        if self._skipping:
            return
        if len(self._buffer) + len(piece) > self.limit:
            self._buffer.clear()
            self._skipping = True
            self.oversized += 1
            return
        self._buffer += piece


def strip_prefix(line: bytes, prefix: bytes | None) -> bytes | None:
    """The line without the device's ``prefix``; None when a prefix is required and missing."""
    if not prefix:
        return line
    return line[len(prefix) :] if line.startswith(prefix) else None


def parse_entry(line: bytes) -> Any:
    """The JSON value on a line (after any ``prefix`` option's text), or None when there is none.
    Never raises: a hostile line (deep nesting included) is just not an entry."""
    start = line.find(b"{")
    if start < 0:
        return None
    try:
        return json.loads(line[start:])
    except (ValueError, RecursionError):  # ValueError covers UnicodeDecodeError
        return None
    except Exception:  # anything else json may raise on hostile input: still just not an entry
        return None


def is_audit_entry(entry: Any) -> bool:
    """Whether ``entry`` has the shape of a Vault audit entry (request or response)."""
    return (
        isinstance(entry, dict)
        and entry.get("type") in ("request", "response")
        and isinstance(entry.get("time"), str)
        and isinstance(entry.get("request"), dict)
    )


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


__all__ = [
    "MAX_LINE_BYTES",
    "LineReader",
    "is_audit_entry",
    "parse_entry",
    "paths_to_mappings",
    "strip_prefix",
    "written_path",
]
