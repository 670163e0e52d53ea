"""``StateStore``: the thread-safe handle on one state file (or ``:memory:``) and its queries."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from syncd.engine.state.backend import StateBackend
from syncd.engine.state.files import acquire_writer_lock, prepare_file, read_only_uri
from syncd.engine.state.records import BindingRecord, MappingOutcome, MappingStatus
from syncd.engine.state.schema import (
    SELECT_BINDINGS,
    SELECT_STATUS,
    TARGET_COLUMNS,
    TARGET_ORDER,
    UPSERT_BINDING,
    UPSERT_STATUS,
    binding_from_row,
    binding_to_row,
    initialise,
    read_key,
    status_from_row,
    status_to_row,
    target_key,
    transaction,
)
from syncd.errors import StateError
from syncd.model import Target

MEMORY = ":memory:"

_EMPTY_STATUS = MappingStatus("", None, None, None, None, None, None, None, in_sync=False)


class StateStore(StateBackend):
    """Use ``StateStore.open(path)``; safe to share between threads; ``close()`` when done."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        hmac_key: bytes,
        location: str,
        *,
        read_only: bool = False,
        lock_fd: int | None = None,
    ) -> None:
        self._conn = conn
        self._hmac_key = hmac_key
        self._location = location
        self._read_only = read_only
        self._lock_fd = lock_fd
        self._lock = threading.RLock()
        self._closed = False

    @classmethod
    def open(cls, path: Path | str, *, exclusive: bool = True) -> StateStore:
        """Open the store at ``path``; ``":memory:"`` (always writable, no lock) for tests.

        ``exclusive`` (the writer): create or migrate the file as needed and hold its writer lock until
        ``close()``; ``StateLocked`` if another writer holds it. ``exclusive=False`` (a reader): no
        lock, read-only; the file must exist at the current schema version (``StateError`` if not).
        """
        location = str(path)
        if location == MEMORY:
            return cls(*_connect(location, location, writable=True), location)
        if not exclusive:
            return cls(*_connect(read_only_uri(Path(path)), location, writable=False), location, read_only=True)
        prepare_file(Path(path))
        lock_fd = acquire_writer_lock(Path(path))
        try:
            conn, hmac_key = _connect(location, location, writable=True)
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(conn, hmac_key, location, lock_fd=lock_fd)

    @property
    def hmac_key(self) -> bytes:
        return self._hmac_key

    @property
    def location(self) -> str:
        return self._location

    @property
    def read_only(self) -> bool:
        return self._read_only

    def __repr__(self) -> str:
        return f"StateStore({self._location!r}{', read_only=True' if self._read_only else ''})"

    # --- bindings ---------------------------------------------------------------------------------

    def bindings(self, *, target: Target | None = None, mapping: str | None = None) -> list[BindingRecord]:
        """Recorded bindings, optionally of one target and/or one mapping, ordered by target and name."""
        clauses: list[str] = []
        params: list[Any] = []
        if target is not None:
            clauses.append(TARGET_COLUMNS)
            params.extend(target_key(target))
        if mapping is not None:
            clauses.append("mapping = ?")
            params.append(mapping)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{SELECT_BINDINGS}{where} ORDER BY {TARGET_ORDER}, name"
        shared: dict[Any, Any] = {}
        with self._lock:  # one row at a time: the rows of 10,000 bindings never exist at once
            return [binding_from_row(row, shared) for row in self._connection().execute(sql, params)]

    def record_bindings(self, records: Sequence[BindingRecord]) -> None:
        """Insert or replace each record (keyed by target and name), all in one transaction."""
        rows = [binding_to_row(record) for record in records]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(UPSERT_BINDING, rows)

    def forget_bindings(self, target: Target, names: Collection[str]) -> None:
        if not names:
            return
        key = target_key(target)
        with self._write() as conn:
            conn.executemany(
                f"DELETE FROM bindings WHERE {TARGET_COLUMNS} AND name = ?",  # noqa: S608 - fixed columns
                [(*key, name) for name in names],
            )

    # --- mapping status ---------------------------------------------------------------------------

    def mapping_status(self, mapping: str) -> MappingStatus | None:
        with self._lock:
            row = self._connection().execute(f"{SELECT_STATUS} WHERE mapping = ?", (mapping,)).fetchone()
        return None if row is None else status_from_row(row)

    def all_mapping_status(self) -> list[MappingStatus]:
        with self._lock:
            return [status_from_row(row) for row in self._connection().execute(f"{SELECT_STATUS} ORDER BY mapping")]

    def record_mapping_results(self, outcomes: Sequence[MappingOutcome]) -> None:
        """Record a cycle's attempts in one transaction (one fsync per cycle, not one per mapping)."""
        if not outcomes:
            return
        with self._write() as conn:

            def rows() -> Iterator[tuple[Any, ...]]:  # one at a time: 10,000 rows never exist at once
                for outcome in outcomes:
                    old = conn.execute(f"{SELECT_STATUS} WHERE mapping = ?", (outcome.mapping,)).fetchone()
                    yield status_to_row(outcome.applied_to(status_from_row(old) if old else _EMPTY_STATUS))

            conn.executemany(UPSERT_STATUS, rows())

    def remove_mapping_status(self, mapping: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM mapping_status WHERE mapping = ?", (mapping,))

    def mapping_names(self) -> set[str]:
        """Every mapping the state knows (by bindings or status): the ones gone from config were removed."""
        with self._lock:
            rows = (
                self._connection()
                .execute("SELECT mapping FROM bindings UNION SELECT mapping FROM mapping_status")
                .fetchall()
            )
        return {str(row[0]) for row in rows}

    # --- lifecycle --------------------------------------------------------------------------------

    def reload(self) -> None:
        """Nothing to do: every read goes to the file, which has one writer (the lock)."""

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                try:
                    self._conn.close()
                finally:
                    if self._lock_fd is not None:  # after the connection: no write after the unlock
                        os.close(self._lock_fd)

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StateError(f"state store {self._location} is closed")
        return self._conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            if self._read_only:
                raise StateError(f"state store {self._location} is open read-only")
            try:
                with transaction(conn):
                    yield conn
            except sqlite3.Error as exc:
                raise StateError(f"state store {self._location}: write failed: {exc}") from None


def _connect(target: str, location: str, *, writable: bool) -> tuple[sqlite3.Connection, bytes]:
    """A configured connection to ``target`` (a path, ``:memory:`` or a read-only URI) and the HMAC key."""
    try:
        conn = sqlite3.connect(
            target, check_same_thread=False, isolation_level=None, timeout=10.0, uri=target.startswith("file:")
        )
    except sqlite3.Error as exc:
        raise StateError(f"cannot open state store {location}: {exc}") from None
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        if not writable:
            return conn, read_key(conn, location)
        if location != MEMORY:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StateError(f"state store {location}: cannot switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn, initialise(conn, location)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StateError(f"state store {location} is not a usable SQLite database: {exc}") from None
    except BaseException:
        conn.close()
        raise
