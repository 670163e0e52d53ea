"""The state store: what syncd pushed where, and how each mapping fared. Never a secret value.

SQLite in WAL mode (readers such as ``/status`` never block the writer), one connection shared by
threads under a lock, every write one transaction. The file and its directory are private (0600 and
0700). The schema is versioned in ``meta.schema_version``: an older file is migrated on open, a newer
one is refused with ``StateError`` so a downgrade cannot corrupt it.

It holds the random HMAC key of the fingerprints (``meta.hmac_key``), one row per binding syncd
knows on a target (``bindings``: Vault version, keyed fingerprint, shape, ownership) and one row per
mapping (``mapping_status``). A binding row with ``pending = 1`` is a write intent: recorded before
the first Cloudflare call for a binding syncd had no row for, so the ownership decided then survives
a crash between Cloudflare's confirmation and the record (schema 2; see the applier).

The stored key lives next to the fingerprints, so the file alone keeps values safe from anyone who
only sees fingerprints (logs, ``/status``, a state dump) but not from someone with the whole file
and time to brute-force a short value; the file is therefore kept private, and operators who want
more set ``sync.fingerprint_key`` so that the key is kept outside the file.

One writer per file: a writer (``open(path)``) holds ``flock(LOCK_EX)`` on ``<path>.lock`` (0600,
it holds the writer's pid) until ``close()`` or its death, and a second writer, in this process or
another, is refused with ``StateLocked``. Readers (``open(path, exclusive=False)``: ``syncd status``
and ``syncd plan``) take no lock, open SQLite with ``mode=ro`` and never create, migrate or write,
so they work while the service runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sqlite3
import stat
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.errors import StateError, StateLocked
from syncd.model import Target, VaultSecretRef

SCHEMA_VERSION = 2
HMAC_KEY_BYTES = 32
MEMORY = ":memory:"


@dataclass(frozen=True)
class BindingRecord:
    target: Target
    name: str
    mapping: str
    ref: VaultSecretRef
    vault_version: int | None
    fingerprint: str | None  # None for adopted bindings (missing-only): the value on the Worker is unknown
    shape: str  # DesiredBinding.shape()
    owned: bool  # True only if syncd created it (False for adopted / pre-existing)
    pushed_at: float | None
    # A write intent: syncd may have written this binding (the outcome of the call is unknown);
    # ``owned`` is as decided before the call, fingerprint, version and pushed_at are None.
    pending: bool = False


@dataclass(frozen=True)
class MappingStatus:
    mapping: str
    config_fingerprint: str | None
    last_version: int | None
    last_success_at: float | None
    last_attempt_at: float | None
    last_pushed_at: float | None
    last_error_code: str | None
    last_error: str | None
    in_sync: bool


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE bindings (
            account_id TEXT NOT NULL,
            dispatch_namespace TEXT NOT NULL,  -- '' when the target has none
            script TEXT NOT NULL,
            name TEXT NOT NULL,
            mapping TEXT NOT NULL,
            mount TEXT NOT NULL,
            path TEXT NOT NULL,
            vault_version INTEGER,
            fingerprint TEXT,
            shape TEXT NOT NULL,
            owned INTEGER NOT NULL,
            pushed_at REAL,
            PRIMARY KEY (account_id, dispatch_namespace, script, name)
        )"""
    )
    conn.execute("CREATE INDEX bindings_by_mapping ON bindings (mapping)")
    conn.execute(
        """CREATE TABLE mapping_status (
            mapping TEXT PRIMARY KEY,
            config_fingerprint TEXT,
            last_version INTEGER,
            last_success_at REAL,
            last_attempt_at REAL,
            last_pushed_at REAL,
            last_error_code TEXT,
            last_error TEXT,
            in_sync INTEGER NOT NULL
        )"""
    )


def _migrate_to_2(conn: sqlite3.Connection) -> None:
    """Write intents: a row that says "syncd may have written this", never mistaken for an adoption."""
    conn.execute("ALTER TABLE bindings ADD COLUMN pending INTEGER NOT NULL DEFAULT 0")


_EMPTY_STATUS = MappingStatus("", None, None, None, None, None, None, None, in_sync=False)

# MIGRATIONS[n] takes a schema at version n to version n + 1 (0 is an empty file).
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_to_1, _migrate_to_2)
assert len(MIGRATIONS) == SCHEMA_VERSION

_BINDING_COLUMNS = (
    "account_id, dispatch_namespace, script, name, mapping, mount, path, vault_version, fingerprint, shape, owned, "
    "pushed_at, pending"
)
_STATUS_COLUMNS = (
    "mapping, config_fingerprint, last_version, last_success_at, last_attempt_at, last_pushed_at, last_error_code, "
    "last_error, in_sync"
)
# Fixed column lists only; every value goes through a placeholder.
_SELECT_BINDINGS = f"SELECT {_BINDING_COLUMNS} FROM bindings"  # noqa: S608
_UPSERT_BINDING = f"INSERT OR REPLACE INTO bindings ({_BINDING_COLUMNS}) VALUES ({', '.join('?' * 13)})"  # noqa: S608
_SELECT_STATUS = f"SELECT {_STATUS_COLUMNS} FROM mapping_status"  # noqa: S608
_UPSERT_STATUS = f"INSERT OR REPLACE INTO mapping_status ({_STATUS_COLUMNS}) VALUES ({', '.join('?' * 9)})"  # noqa: S608


@dataclass(frozen=True)
class MappingOutcome:
    """One attempt at a mapping, as ``record_mapping_results`` stores it.

    Success (no error): config fingerprint, version and ``last_success_at`` move to this attempt.
    Failure: they keep their previous values (so the next cycle still sees the change it failed
    to apply) and the error is recorded. ``pushed`` moves ``last_pushed_at`` either way.
    """

    mapping: str
    at: float
    config_fingerprint: str | None
    version: int | None
    in_sync: bool
    pushed: bool
    error_code: str | None
    error: str | None

    def applied_to(self, previous: MappingStatus) -> MappingStatus:
        failed = self.error_code is not None or self.error is not None
        return MappingStatus(
            mapping=self.mapping,
            config_fingerprint=previous.config_fingerprint if failed else self.config_fingerprint,
            last_version=previous.last_version if failed else self.version,
            last_success_at=previous.last_success_at if failed else self.at,
            last_attempt_at=self.at,
            last_pushed_at=self.at if self.pushed else previous.last_pushed_at,
            last_error_code=self.error_code,
            last_error=self.error,
            in_sync=self.in_sync,
        )


class StateStore:
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
            return cls(*_connect(_read_only_uri(Path(path)), location, writable=False), location, read_only=True)
        _prepare_file(Path(path))
        lock_fd = _acquire_writer_lock(Path(path))
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
            clauses.append("account_id = ? AND dispatch_namespace = ? AND script = ?")
            params.extend(_target_key(target))
        if mapping is not None:
            clauses.append("mapping = ?")
            params.append(mapping)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_SELECT_BINDINGS}{where} ORDER BY account_id, dispatch_namespace, script, name"
        with self._lock:
            rows = self._connection().execute(sql, params).fetchall()
        return [_binding_from_row(row) for row in rows]

    def record_bindings(self, records: Sequence[BindingRecord]) -> None:
        """Insert or replace each record (keyed by target and name), all in one transaction."""
        rows = [_binding_to_row(record) for record in records]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(_UPSERT_BINDING, rows)

    def forget_bindings(self, target: Target, names: Collection[str]) -> None:
        if not names:
            return
        key = _target_key(target)
        with self._write() as conn:
            conn.executemany(
                "DELETE FROM bindings WHERE account_id = ? AND dispatch_namespace = ? AND script = ? AND name = ?",
                [(*key, name) for name in names],
            )

    # --- mapping status ---------------------------------------------------------------------------

    def mapping_status(self, mapping: str) -> MappingStatus | None:
        with self._lock:
            row = self._connection().execute(f"{_SELECT_STATUS} WHERE mapping = ?", (mapping,)).fetchone()
        return None if row is None else _status_from_row(row)

    def all_mapping_status(self) -> list[MappingStatus]:
        with self._lock:
            rows = self._connection().execute(f"{_SELECT_STATUS} ORDER BY mapping").fetchall()
        return [_status_from_row(row) for row in rows]

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
        """Record one attempt at ``mapping`` (see ``MappingOutcome`` for the rules)."""
        self.record_mapping_results(
            [MappingOutcome(mapping, at, config_fingerprint, version, in_sync, pushed, error_code, error)]
        )

    def record_mapping_results(self, outcomes: Sequence[MappingOutcome]) -> None:
        """Record a cycle's attempts in one transaction (one fsync per cycle, not one per mapping)."""
        if not outcomes:
            return
        with self._write() as conn:
            rows = []
            for outcome in outcomes:
                old = conn.execute(f"{_SELECT_STATUS} WHERE mapping = ?", (outcome.mapping,)).fetchone()
                rows.append(_status_to_row(outcome.applied_to(_status_from_row(old) if old else _EMPTY_STATUS)))
            conn.executemany(_UPSERT_STATUS, rows)

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
                with _transaction(conn):
                    yield conn
            except sqlite3.Error as exc:
                raise StateError(f"state store {self._location}: write failed: {exc}") from None


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _prepare_file(path: Path) -> None:
    """A private directory and a 0600 file before SQLite touches it (its -wal/-shm copy the mode)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StateError(f"cannot create state store {path}: {exc.strerror}") from None


def _lock_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.lock")


def _acquire_writer_lock(path: Path) -> int:
    """Hold ``flock(LOCK_EX)`` on ``<path>.lock`` and write our pid into it; the open fd is the lock.

    flock locks belong to the open file description: a second open in this process is refused too,
    and the kernel releases the lock when the process dies, however it dies. The file is never
    removed (removing it would let two processes lock two different files of the same name).
    """
    lock = _lock_path(path)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StateError(f"cannot create the lock file {lock}: {exc.strerror}") from None
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateLocked(
                f"another syncd process{_holder(fd)} holds the state store {path} (lock file {lock}); "
                "syncd is a single writer per state file, so nothing was done: stop that process first, "
                "or use `syncd plan` or `syncd status`, which only read"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:
        os.close(fd)
        raise StateError(f"cannot lock the state store {path} ({lock}): {exc.strerror}") from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _holder(fd: int) -> str:
    """`` (pid N)`` from the holder's lock file, or nothing when it has not written it (yet)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


def _read_only_uri(path: Path) -> str:
    if not path.is_file():
        raise StateError(f"no state store at {path} (syncd once or syncd run creates it)")
    return f"{path.absolute().as_uri()}?mode=ro"


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
            return conn, _read_key(conn, location)
        if location != MEMORY:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StateError(f"state store {location}: cannot switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn, _initialise(conn, location)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StateError(f"state store {location} is not a usable SQLite database: {exc}") from None
    except BaseException:
        conn.close()
        raise


def _read_key(conn: sqlite3.Connection, location: str) -> bytes:
    """The HMAC key of a store opened read-only, which must be at this syncd's schema version."""
    try:
        version_row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        version_row = None
    if version_row is None:
        raise StateError(f"state store {location} holds no syncd state yet (syncd once or syncd run creates it)")
    version = int(version_row[0])
    if version != SCHEMA_VERSION:
        newer = version > SCHEMA_VERSION
        raise StateError(
            f"state store {location} has schema version {version}, "
            + (
                f"newer than this syncd understands ({SCHEMA_VERSION}); upgrade syncd"
                if newer
                else f"older than this syncd's ({SCHEMA_VERSION}); a reader does not migrate it: "
                "syncd once or syncd run does"
            )
        )
    return _checked_key(conn.execute("SELECT value FROM meta WHERE key = 'hmac_key'").fetchone(), location)


def _checked_key(row: Sequence[Any] | None, location: str) -> bytes:
    key = b"" if row is None else bytes(row[0])
    if len(key) != HMAC_KEY_BYTES:
        raise StateError(f"state store {location}: the fingerprint key is damaged")
    return key


def _initialise(conn: sqlite3.Connection, location: str) -> bytes:
    """Create or migrate the schema and return the HMAC key (created on first open)."""
    with _transaction(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row is not None else 0
        if version > SCHEMA_VERSION:
            raise StateError(
                f"state store {location} has schema version {version}, newer than this syncd "
                f"understands ({SCHEMA_VERSION}); upgrade syncd or move the file away"
            )
        for migrate in MIGRATIONS[version:]:
            migrate(conn)
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        key_row = conn.execute("SELECT value FROM meta WHERE key = 'hmac_key'").fetchone()
        if key_row is None:
            key = secrets.token_bytes(HMAC_KEY_BYTES)
            conn.execute("INSERT INTO meta (key, value) VALUES ('hmac_key', ?)", (key,))
            return key
        return _checked_key(key_row, location)


def _target_key(target: Target) -> tuple[str, str, str]:
    return (target.account_id, target.dispatch_namespace or "", target.script)


def _binding_to_row(record: BindingRecord) -> tuple[Any, ...]:
    return (
        *_target_key(record.target),
        record.name,
        record.mapping,
        record.ref.mount,
        record.ref.path,
        record.vault_version,
        record.fingerprint,
        record.shape,
        int(record.owned),
        record.pushed_at,
        int(record.pending),
    )


def _binding_from_row(row: Sequence[Any]) -> BindingRecord:
    account, namespace, script, name, mapping, mount, path, version, fingerprint, shape, owned, pushed_at, pending = row
    return BindingRecord(
        target=Target(account, script, namespace or None),
        name=name,
        mapping=mapping,
        ref=VaultSecretRef(mount, path),
        vault_version=version,
        fingerprint=fingerprint,
        shape=shape,
        owned=bool(owned),
        pushed_at=pushed_at,
        pending=bool(pending),
    )


def _status_to_row(status: MappingStatus) -> tuple[Any, ...]:
    return (
        status.mapping,
        status.config_fingerprint,
        status.last_version,
        status.last_success_at,
        status.last_attempt_at,
        status.last_pushed_at,
        status.last_error_code,
        status.last_error,
        int(status.in_sync),
    )


def _status_from_row(row: Sequence[Any]) -> MappingStatus:
    mapping, config_fp, version, success_at, attempt_at, pushed_at, error_code, error, in_sync = row
    return MappingStatus(
        mapping=mapping,
        config_fingerprint=config_fp,
        last_version=version,
        last_success_at=success_at,
        last_attempt_at=attempt_at,
        last_pushed_at=pushed_at,
        last_error_code=error_code,
        last_error=error,
        in_sync=bool(in_sync),
    )
