"""``KubernetesStateStore``: the state of several replicas, kept in a few Secrets of syncd's namespace.

The same records as the SQLite store (``records``: bindings with versions, keyed fingerprints,
shapes, ownership and write intents; mapping statuses; never a value, never a key) in a fixed set
of Secrets ``<prefix>-0`` .. ``<prefix>-<N-1>`` that the manifests create (syncd gets ``get`` and
``update`` on exactly those names, no ``create``). A mapping's records live in the Secret its name
hashes to (``chunks.bucket_of``), gzip-compressed JSON under the data key ``state.json.gz``,
each at most ``max_secret_bytes`` (default 512 KiB, half of Kubernetes' 1 MiB Secret limit).

Who writes: only the Lease holder opens it as the writer (``exclusive=True``); a new leader opens it
(or calls ``reload()``) when it takes over and reads every Secret. Every write is a ``PUT`` of the
whole Secret carrying the ``resourceVersion`` read or last written: if anyone else wrote it since,
Kubernetes answers 409 and this store raises ``StateConflict`` and refuses every later write
(``fenced``): it never overwrites what another writer wrote. The leader that sees it must step down.

Writes proportional to changes (see ``backend`` for the durability contract):

- a change is kept in memory and marks the Secret of its mapping dirty, unless nothing but a
  status's attempt/success times moved (``chunks.material``); each Secret keeps the JSON row of
  each record, so writing it re-encodes only what changed;
- a write intent (``pending=True``) is written at once, before the Cloudflare call it guards;
- ``record_mapping_results`` (the end of a cycle), ``remove_mapping_status`` and ``close`` write
  the dirty Secrets: an unchanged cycle writes nothing, a rotation of one mapping one Secret.

A record that moves between Secrets (another ``secret_count``, or a binding that changes mapping)
is first written to its new Secret and only then removed from the old one; a reader that finds
two copies keeps the one in the Secret its mapping hashes to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from typing import Any

import structlog

from syncd.engine.state.backend import StateBackend
from syncd.engine.state.chunks import (
    binding_row,
    bucket_of,
    encode_rows,
    material,
    status_row,
)
from syncd.engine.state.records import BindingRecord, MappingOutcome, MappingStatus
from syncd.engine.state.secret_objects import SecretsApi, checked, records_of, state_error, with_data, without_data
from syncd.errors import KubernetesApiError, StateConflict, StateError
from syncd.model import Target

log = structlog.get_logger("syncd.state")

_EMPTY_STATUS = MappingStatus("", None, None, None, None, None, None, None, in_sync=False)

BindingKey = tuple[str, str, str, str, str]  # account id, dispatch namespace or "", script, kind, name
RecordKey = tuple[str, ...]  # ("b", *BindingKey) or ("s", mapping)


def _binding_key(target: Target, name: str) -> BindingKey:
    return (target.account_id, target.dispatch_namespace or "", target.script, target.kind.value, name)


class KubernetesStateStore(StateBackend):
    """Use ``KubernetesStateStore.open(api, names, hmac_key=...)``; thread-safe; ``close()`` when done."""

    def __init__(
        self,
        api: SecretsApi,
        names: Sequence[str],
        *,
        hmac_key: bytes,
        read_only: bool,
        max_secret_bytes: int,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if not names:
            raise ValueError("the kubernetes state needs at least one Secret")
        self._api = api
        self._names = tuple(names)
        self._hmac_key = bytes(hmac_key)
        self._read_only = read_only
        self._max_bytes = max_secret_bytes
        self._on_close = on_close
        # Called once, on a thread of its own, when another writer is detected (the engine logs a
        # StateError and goes on: this is how the service learns it must step down).
        self.on_conflict: Callable[[], None] | None = None
        self._lock = threading.RLock()
        self._fenced: str | None = None
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        count = len(self._names)
        self._bindings: dict[BindingKey, BindingRecord] = {}
        self._statuses: dict[str, MappingStatus] = {}
        # Per Secret: the JSON row of each record it holds (rebuilt only for the records that change).
        self._binding_rows: list[dict[BindingKey, str]] = [{} for _ in range(count)]
        self._status_rows: list[dict[str, str]] = [{} for _ in range(count)]
        self._bodies: list[dict[str, Any]] = [{} for _ in range(count)]  # as last read/written, without our data
        self._dirty: set[int] = set()  # Secrets whose material content changed since written
        self._moved_from: list[set[RecordKey]] = [set() for _ in range(count)]  # may still hold a moved record

    @classmethod
    def open(
        cls,
        api: SecretsApi,
        names: Sequence[str],
        *,
        hmac_key: bytes,
        exclusive: bool = True,
        max_secret_bytes: int = 512 * 1024,
        on_close: Callable[[], None] | None = None,
    ) -> KubernetesStateStore:
        """Read every Secret of ``names``. ``exclusive``: the leader, which writes; else a reader.

        ``StateError`` naming the Secret when one is missing, unreadable or damaged. ``on_close``
        runs after the last write of ``close()`` (closing the HTTP client the caller made).
        """
        store = cls(
            api, names, hmac_key=hmac_key, read_only=not exclusive, max_secret_bytes=max_secret_bytes, on_close=on_close
        )
        store.reload()
        return store

    @property
    def hmac_key(self) -> bytes:
        return self._hmac_key

    @property
    def location(self) -> str:
        first, last = self._names[0], self._names[-1]
        return f"secrets {self._api.namespace}/{first}" + (f"..{last}" if last != first else "")

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def fenced(self) -> bool:
        """True once another writer was detected: this store writes nothing more."""
        return self._fenced is not None

    def __repr__(self) -> str:
        return f"KubernetesStateStore({self.location!r}{', read_only=True' if self._read_only else ''})"

    # --- reading the Secrets ----------------------------------------------------------------------

    def reload(self) -> None:
        """Forget memory and read every Secret again (a new leader does this when it takes over).

        Changes not yet written are dropped; a fenced store becomes writable again, now from what
        the other writer left.
        """
        with self._lock:
            self._check_open()
            chunks = []
            for name in self._names:
                body = self._call(name, self._api.get, "read")
                chunks.append((records_of(body, f"secret {self._api.namespace}/{name}"), without_data(body)))
            self._reset()
            self._fenced = None
            found: dict[RecordKey, int] = {}  # where each record was read (its home copy wins)
            for index, (chunk, body) in enumerate(chunks):
                self._bodies[index] = body
                for record in chunk.bindings:
                    self._load(("b", *_binding_key(record.target, record.name)), record, record.mapping, index, found)
                for status in chunk.statuses:
                    self._load(("s", status.mapping), status, status.mapping, index, found)

    def _load(
        self,
        key: RecordKey,
        record: BindingRecord | MappingStatus,
        mapping: str,
        index: int,
        found: dict[RecordKey, int],
    ) -> None:
        home = self._bucket(mapping)
        if index != home:  # another secret_count wrote it, or a move was cut short: move it home
            self._moved_from[index].add(key)
            self._dirty.update((index, home))
        if key in found and found[key] == home:
            return
        found[key] = index
        if isinstance(record, BindingRecord):
            self._put_binding(_binding_key(record.target, record.name), record, mark=False)
        else:
            self._put_status(record, mark=False)

    # --- bindings ---------------------------------------------------------------------------------

    def bindings(self, *, target: Target | None = None, mapping: str | None = None) -> list[BindingRecord]:
        with self._lock:
            self._check_open()
            records = list(self._bindings.items())
        if target is not None:
            wanted = _binding_key(target, "")[:4]
            records = [(k, r) for k, r in records if k[:4] == wanted]
        if mapping is not None:
            records = [(k, r) for k, r in records if r.mapping == mapping]
        return [record for _, record in sorted(records, key=lambda item: item[0])]

    def record_bindings(self, records: Sequence[BindingRecord]) -> None:
        """All or nothing; a write intent among them is written before this returns."""
        if not records:
            return
        for record in records:
            _check_binding(record)
        with self._lock:
            self._check_writable()
            keys = [_binding_key(r.target, r.name) for r in records]
            previous = {key: self._bindings.get(key) for key in keys}
            for key, record in zip(keys, records, strict=True):
                self._put_binding(key, record)
            if not any(record.pending for record in records):
                return
            try:
                self._flush()
            except StateError:
                for key, old in previous.items():  # the intent was not recorded: the call must not happen
                    if old is None:
                        self._drop_binding(key)
                    else:
                        self._put_binding(key, old)
                raise

    def forget_bindings(self, target: Target, names: Collection[str]) -> None:
        if not names:
            return
        with self._lock:
            self._check_writable()
            for name in names:
                self._drop_binding(_binding_key(target, name))

    def _put_binding(self, key: BindingKey, record: BindingRecord, *, mark: bool = True) -> None:
        old = self._bindings.get(key)
        if old == record:
            return
        home = self._bucket(record.mapping)
        if old is not None:
            self._forget_row(key, old)
        self._bindings[key] = record
        self._binding_rows[home][key] = binding_row(record)
        if mark:
            self._dirty.add(home)

    def _drop_binding(self, key: BindingKey) -> None:
        old = self._bindings.pop(key, None)
        if old is not None:
            self._forget_row(key, old)

    def _forget_row(self, key: BindingKey, old: BindingRecord) -> None:
        where = self._bucket(old.mapping)
        del self._binding_rows[where][key]
        self._dirty.add(where)
        self._moved_from[where].add(("b", *key))

    def _put_status(self, status: MappingStatus, *, mark: bool = True) -> None:
        old = self._statuses.get(status.mapping)
        home = self._bucket(status.mapping)
        self._statuses[status.mapping] = status
        if old is not None and material(old) == material(status):
            self._status_rows[home][status.mapping] = ""  # only the times moved: rebuilt when next written
            return
        self._status_rows[home][status.mapping] = status_row(status)
        if mark:
            self._dirty.add(home)

    def _status_row(self, mapping: str) -> str:
        rows = self._status_rows[self._bucket(mapping)]
        if not rows[mapping]:
            rows[mapping] = status_row(self._statuses[mapping])
        return rows[mapping]

    # --- mapping status ---------------------------------------------------------------------------

    def mapping_status(self, mapping: str) -> MappingStatus | None:
        with self._lock:
            self._check_open()
            return self._statuses.get(mapping)

    def all_mapping_status(self) -> list[MappingStatus]:
        with self._lock:
            self._check_open()
            return [self._statuses[name] for name in sorted(self._statuses)]

    def record_mapping_results(self, outcomes: Sequence[MappingOutcome]) -> None:
        """Apply a cycle's outcomes and write every Secret whose content changed (often none)."""
        with self._lock:
            self._check_writable()
            for outcome in outcomes:
                self._put_status(outcome.applied_to(self._statuses.get(outcome.mapping, _EMPTY_STATUS)))
            self._flush()

    def remove_mapping_status(self, mapping: str) -> None:
        with self._lock:
            self._check_writable()
            if self._statuses.pop(mapping, None) is not None:
                home = self._bucket(mapping)
                del self._status_rows[home][mapping]
                self._dirty.add(home)
            self._flush()

    def mapping_names(self) -> set[str]:
        with self._lock:
            self._check_open()
            return {r.mapping for r in self._bindings.values()} | set(self._statuses)

    # --- writing the Secrets ----------------------------------------------------------------------

    def flush(self) -> None:
        """Write every Secret whose content changed since it was read or written."""
        with self._lock:
            self._check_writable()
            self._flush()

    def _flush(self) -> None:
        if not self._dirty:
            return
        dirty = sorted(self._dirty)
        # A record that moved to another Secret stays in the old one until the new one is written.
        departed = {index: self._departed(index) for index in dirty}
        moved = {index for index, (bindings, statuses) in departed.items() if bindings or statuses}
        first = {index: self._encoded(index, departed[index]) for index in dirty}  # every size checked first
        for index in dirty:
            self._write(index, first[index])
            if index not in moved:
                self._dirty.discard(index)
                self._moved_from[index].clear()
        for index in dirty:
            if index in moved:
                self._write(index, self._encoded(index, ([], [])))
                self._dirty.discard(index)
                self._moved_from[index].clear()

    def _departed(self, index: int) -> tuple[list[str], list[str]]:
        """Rows of records this Secret may hold that now belong in another Secret."""
        bindings: list[str] = []
        statuses: list[str] = []
        for key in self._moved_from[index]:
            if key[0] == "b":
                binding_key = (key[1], key[2], key[3], key[4], key[5])
                record = self._bindings.get(binding_key)
                if record is not None and self._bucket(record.mapping) != index:
                    bindings.append(self._binding_rows[self._bucket(record.mapping)][binding_key])
            else:
                status = self._statuses.get(key[1])
                if status is not None and self._bucket(status.mapping) != index:
                    statuses.append(self._status_row(status.mapping))
        return bindings, statuses

    def _encoded(self, index: int, extra: tuple[list[str], list[str]]) -> bytes:
        rows, status_rows = self._binding_rows[index], self._status_rows[index]
        blob = encode_rows(
            [rows[key] for key in sorted(rows)] + sorted(extra[0]),
            [status_rows[name] or self._status_row(name) for name in sorted(status_rows)] + sorted(extra[1]),
        )
        if len(blob) > self._max_bytes:
            raise StateError(
                f"state secret {self._api.namespace}/{self._names[index]} would hold {len(blob)} bytes, over "
                f"the {self._max_bytes} allowed: raise [state.kubernetes] secret_count and create the new "
                "Secrets (nothing was written)"
            )
        return blob

    def _write(self, index: int, blob: bytes) -> None:
        body = with_data(self._bodies[index], blob)
        answer = self._call(self._names[index], lambda name: self._api.replace(name, body), "write")
        self._bodies[index] = without_data(answer)

    def _call(self, name: str, call: Callable[[str], dict[str, Any]], verb: str) -> dict[str, Any]:
        where = f"{self._api.namespace}/{name}"
        try:
            return checked(call(name), where)
        except KubernetesApiError as exc:
            if exc.status != 409:
                raise state_error(exc, where, verb, self._names) from None
        first = self._fenced is None
        self._fenced = f"secret {where} was written by someone else"
        log.error("state.conflict", where=where)  # not "secret=": the log redaction masks that field
        if first and self.on_conflict is not None:  # on its own thread: never under this lock
            threading.Thread(target=self.on_conflict, name="state-conflict", daemon=True).start()
        raise StateConflict(
            f"state secret {where} was changed by another writer since this syncd read it (409 Conflict): "
            "another replica is writing the state; nothing was overwritten and this syncd writes no more"
        )

    # --- helpers ----------------------------------------------------------------------------------

    def _bucket(self, mapping: str) -> int:
        return bucket_of(mapping, len(self._names))

    def _check_open(self) -> None:
        if self._closed:
            raise StateError(f"state store {self.location} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._read_only:
            raise StateError(f"state store {self.location} is open read-only")
        if self._fenced is not None:
            raise StateConflict(f"state store {self.location} writes no more: {self._fenced}")

    # --- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Write what is still dirty (unless read-only or fenced), then refuse further use."""
        with self._lock:
            if self._closed:
                return
            try:
                if not self._read_only and self._fenced is None:
                    self._flush()
            finally:
                self._closed = True
                if self._on_close is not None:
                    self._on_close()

    def __enter__(self) -> KubernetesStateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _check_binding(record: BindingRecord) -> None:
    """Refuse what SQLite's NOT NULL would: a record that could not be read back."""
    required = (record.name, record.mapping, record.shape, record.ref.mount, record.ref.path, record.target.script)
    if not all(isinstance(value, str) for value in required):
        raise StateError(f"state write failed: binding record {record.name!r} lacks a required field")
