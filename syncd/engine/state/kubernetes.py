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

- every change marks the Secret(s) of the affected mapping dirty and stays in memory;
- a write intent (``pending=True``) is written at once, before the Cloudflare call it guards;
- ``record_mapping_results`` (the end of a cycle), ``remove_mapping_status`` and ``close`` write
  the dirty Secrets whose material content changed (``chunks.material_digest``): an unchanged
  cycle writes nothing, a rotation of one mapping writes one Secret.

A record that moves between Secrets (another ``secret_count``, or a binding that changes mapping)
is first written to its new Secret and only then removed from the old one; a reader that finds
two copies keeps the one in the Secret its mapping hashes to.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from syncd.clients.k8s_secrets import SecretsApiError
from syncd.engine.state.chunks import DATA_KEY, Chunk, bucket_of, decode, encode, material_digest
from syncd.engine.state.records import BindingRecord, MappingOutcome, MappingStatus
from syncd.errors import StateConflict, StateError
from syncd.model import Target

log = structlog.get_logger("syncd.state")

_EMPTY_STATUS = MappingStatus("", None, None, None, None, None, None, None, in_sync=False)

BindingKey = tuple[str, str, str, str]  # account id, dispatch namespace or "", script, name
RecordKey = tuple[str, ...]  # ("b", *BindingKey) or ("s", mapping)


class SecretsApi(Protocol):
    """The Kubernetes API as this store needs it: Secret objects of one namespace, as JSON.

    ``syncd.clients.k8s_secrets.SecretsClient`` implements it; tests pass fakes. Both methods raise
    ``SecretsApiError`` (``status`` 404, 409, 403, ... or None when no answer came).
    """

    @property
    def namespace(self) -> str: ...

    def get(self, name: str) -> dict[str, Any]: ...

    def replace(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]: ...


def _binding_key(target: Target, name: str) -> BindingKey:
    return (target.account_id, target.dispatch_namespace or "", target.script, name)


@dataclass
class _Written:
    """One Secret as last read or written: its object (without our data), version, content digest."""

    body: dict[str, Any]
    digest: bytes
    keys: set[RecordKey] = field(default_factory=set)


class KubernetesStateStore:
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
        self._lock = threading.RLock()
        self._bindings: dict[BindingKey, BindingRecord] = {}
        self._statuses: dict[str, MappingStatus] = {}
        self._written: list[_Written] = []
        self._dirty: set[int] = set()
        self._fenced: str | None = None
        self._closed = False

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
            bindings: dict[BindingKey, tuple[int, BindingRecord]] = {}
            statuses: dict[str, tuple[int, MappingStatus]] = {}
            written: list[_Written] = []
            count = len(self._names)
            for index, name in enumerate(self._names):
                body = self._call(name, self._api.get, "read")
                chunk = self._decode(body, name)
                keys: set[RecordKey] = set()
                for record in chunk.bindings:
                    key = _binding_key(record.target, record.name)
                    keys.add(("b", *key))
                    if key not in bindings or bucket_of(record.mapping, count) == index:
                        bindings[key] = (index, record)
                for status in chunk.statuses:
                    keys.add(("s", status.mapping))
                    if status.mapping not in statuses or bucket_of(status.mapping, count) == index:
                        statuses[status.mapping] = (index, status)
                digest = material_digest(chunk.bindings, chunk.statuses)
                written.append(_Written(_without_data(body), digest, keys))
            self._bindings = {key: record for key, (_, record) in bindings.items()}
            self._statuses = {name: status for name, (_, status) in statuses.items()}
            self._written = written
            self._fenced = None
            # Secrets whose content is not what this process would write (records elsewhere than
            # their mapping's Secret, duplicates): rewritten by the next flush.
            self._dirty = {i for i in range(count) if self._content_digest(i) != written[i].digest}

    def _decode(self, body: Mapping[str, Any], name: str) -> Chunk:
        where = f"secret {self._api.namespace}/{name}"
        data = body.get("data") or {}
        encoded = data.get(DATA_KEY) if isinstance(data, dict) else None
        if encoded is None:
            return decode(encode((), ()), where)  # a Secret the manifests created empty
        try:
            blob = base64.b64decode(encoded, validate=True)
        except (ValueError, TypeError):
            raise StateError(f"state {where}: {DATA_KEY} is not base64") from None
        return decode(blob, where)

    # --- bindings ---------------------------------------------------------------------------------

    def bindings(self, *, target: Target | None = None, mapping: str | None = None) -> list[BindingRecord]:
        with self._lock:
            self._check_open()
            records = list(self._bindings.items())
        if target is not None:
            wanted = _binding_key(target, "")[:3]
            records = [(k, r) for k, r in records if k[:3] == wanted]
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

    def _put_binding(self, key: BindingKey, record: BindingRecord) -> None:
        old = self._bindings.get(key)
        if old is not None:
            self._dirty.add(self._bucket(old.mapping))
        self._bindings[key] = record
        self._dirty.add(self._bucket(record.mapping))

    def _drop_binding(self, key: BindingKey) -> None:
        old = self._bindings.pop(key, None)
        if old is not None:
            self._dirty.add(self._bucket(old.mapping))

    # --- mapping status ---------------------------------------------------------------------------

    def mapping_status(self, mapping: str) -> MappingStatus | None:
        with self._lock:
            self._check_open()
            return self._statuses.get(mapping)

    def all_mapping_status(self) -> list[MappingStatus]:
        with self._lock:
            self._check_open()
            return [self._statuses[name] for name in sorted(self._statuses)]

    def record_mapping_result(
        self,
        mapping: str,
        *,
        at: float,
        config_fingerprint: str | None,
        version: int | None,
        in_sync: bool,
        pushed: bool,
        error_code: str | None,
        error: str | None,
    ) -> None:
        self.record_mapping_results(
            [MappingOutcome(mapping, at, config_fingerprint, version, in_sync, pushed, error_code, error)]
        )

    def record_mapping_results(self, outcomes: Sequence[MappingOutcome]) -> None:
        """Apply a cycle's outcomes and write every Secret whose content changed (often none)."""
        with self._lock:
            self._check_writable()
            for outcome in outcomes:
                previous = self._statuses.get(outcome.mapping, _EMPTY_STATUS)
                self._statuses[outcome.mapping] = outcome.applied_to(previous)
                self._dirty.add(self._bucket(outcome.mapping))
            self._flush()

    def remove_mapping_status(self, mapping: str) -> None:
        with self._lock:
            self._check_writable()
            if self._statuses.pop(mapping, None) is not None:
                self._dirty.add(self._bucket(mapping))
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
        changed: dict[int, bytes] = {}
        for index in sorted(self._dirty):
            digest = self._content_digest(index)
            if digest == self._written[index].digest:
                self._dirty.discard(index)
            else:
                changed[index] = digest
        if not changed:
            return
        # Records that left a Secret for another stay in the old one until the new one is written.
        departed = {i: self._departed(i) for i in changed}
        first = {i: self._encoded(i, extra=departed[i]) for i in changed}
        second = {i: self._encoded(i) for i in changed if departed[i]}
        for index, blob in first.items():
            self._write(index, blob, changed[index] if not departed[index] else b"", departed[index])
        for index, blob in second.items():
            self._write(index, blob, changed[index], [])
        self._dirty.difference_update(changed)

    def _departed(self, index: int) -> list[BindingRecord | MappingStatus]:
        """Records this Secret held when last written that now belong in another Secret."""
        out: list[BindingRecord | MappingStatus] = []
        for key in self._written[index].keys:
            if key[0] == "b":
                record = self._bindings.get((key[1], key[2], key[3], key[4]))
                if record is not None and self._bucket(record.mapping) != index:
                    out.append(record)
            else:
                status = self._statuses.get(key[1])
                if status is not None and self._bucket(status.mapping) != index:
                    out.append(status)
        return out

    def _encoded(self, index: int, extra: Iterable[BindingRecord | MappingStatus] = ()) -> bytes:
        bindings, statuses = self._content(index)
        for record in extra:
            if isinstance(record, BindingRecord):
                bindings.append(record)
            else:
                statuses.append(record)
        blob = encode(bindings, statuses)
        if len(blob) > self._max_bytes:
            raise StateError(
                f"state secret {self._api.namespace}/{self._names[index]} would hold {len(blob)} bytes, over "
                f"the {self._max_bytes} allowed: raise [state.kubernetes] secret_count and create the new "
                "Secrets (nothing was written)"
            )
        return blob

    def _write(self, index: int, blob: bytes, digest: bytes, extra: Sequence[BindingRecord | MappingStatus]) -> None:
        name = self._names[index]
        written = self._written[index]
        body = dict(written.body)
        body["data"] = {**(body.get("data") or {}), DATA_KEY: base64.b64encode(blob).decode("ascii")}
        answer = self._call(name, lambda n: self._api.replace(n, body), "write")
        bindings, statuses = self._content(index)
        keys: set[RecordKey] = {("b", *_binding_key(r.target, r.name)) for r in bindings}
        keys |= {("s", s.mapping) for s in statuses}
        for record in extra:
            keys.add(
                ("b", *_binding_key(record.target, record.name))
                if isinstance(record, BindingRecord)
                else ("s", record.mapping)
            )
        self._written[index] = _Written(_without_data(answer), digest, keys)

    def _call(self, name: str, call: Callable[[str], dict[str, Any]], verb: str) -> dict[str, Any]:
        where = f"{self._api.namespace}/{name}"
        try:
            answer: dict[str, Any] = call(name)
        except SecretsApiError as exc:
            if exc.status == 409:
                self._fenced = f"secret {where} was written by someone else"
                log.error("state.conflict", secret=where)
                raise StateConflict(
                    f"state secret {where} was changed by another writer since this syncd read it (409 Conflict): "
                    "another replica is writing the state; nothing was overwritten and this syncd writes no more"
                ) from None
            if exc.status == 404:
                raise StateError(
                    f"state secret {where} does not exist: the manifests create the Secrets "
                    f"{self._names[0]}..{self._names[-1]} (syncd has no create on Secrets)"
                ) from None
            if exc.status == 403:
                raise StateError(
                    f"cannot {verb} state secret {where}: forbidden; syncd's Role needs get and update on secrets "
                    f"with resourceNames {', '.join(self._names)}"
                ) from None
            raise StateError(f"cannot {verb} state secret {where}: {exc}") from None
        metadata = answer.get("metadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("resourceVersion"), str):
            raise StateError(f"state secret {where}: the API answered an object without metadata.resourceVersion")
        return answer

    # --- helpers ----------------------------------------------------------------------------------

    def _bucket(self, mapping: str) -> int:
        return bucket_of(mapping, len(self._names))

    def _content(self, index: int) -> tuple[list[BindingRecord], list[MappingStatus]]:
        return (
            [r for r in self._bindings.values() if self._bucket(r.mapping) == index],
            [s for s in self._statuses.values() if self._bucket(s.mapping) == index],
        )

    def _content_digest(self, index: int) -> bytes:
        return material_digest(*self._content(index))

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


def _without_data(body: Mapping[str, Any]) -> dict[str, Any]:
    """The object to send back on the next write, without our (large) data key."""
    kept = dict(body)
    data = kept.get("data")
    if isinstance(data, dict):
        kept["data"] = {k: v for k, v in data.items() if k != DATA_KEY}
    return kept


def _check_binding(record: BindingRecord) -> None:
    """Refuse what SQLite's NOT NULL would: a record that could not be read back."""
    required = (record.name, record.mapping, record.shape, record.ref.mount, record.ref.path, record.target.script)
    if not all(isinstance(value, str) for value in required):
        raise StateError(f"state write failed: binding record {record.name!r} lacks a required field")
