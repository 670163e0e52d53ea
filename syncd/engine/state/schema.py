"""The SQLite schema of the state store: its version and migrations, the HMAC key in ``meta``, the
statements of the store and the conversion between records and rows.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from syncd.engine.state.records import STAGED_CODE, BindingRecord, MappingStatus
from syncd.errors import StateError
from syncd.model import DestinationKind, Target, VaultSecretRef

SCHEMA_VERSION = 3
HMAC_KEY_BYTES = 32


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


_LEGACY_STAGED = re.compile(r"^Staged\((\d+)\)$")


def legacy_staged(error_code: str | None) -> tuple[str | None, int | None]:
    """Up to schema 2 (and chunk rows without a ``staged_version`` column) a staged mapping was
    recorded as the error code ``Staged(N)``. Returns the code and staged version of today's form:
    ``("Staged", N)`` for such a code, the code unchanged and None otherwise. Used by migrations only."""
    match = _LEGACY_STAGED.match(error_code or "")
    if match is None:
        return error_code, None
    return STAGED_CODE, int(match.group(1))


def _migrate_to_3(conn: sqlite3.Connection) -> None:
    """Destinations of several kinds (the kind is part of a binding's key), and a staged rotation's
    version as a field, not inside the error code. SQLite cannot change a primary key in place:
    the bindings move to a new table, row for row."""
    conn.execute(
        """CREATE TABLE bindings_3 (
            account_id TEXT NOT NULL,
            dispatch_namespace TEXT NOT NULL,  -- '' when the target has none
            script TEXT NOT NULL,  -- the script's or the store's name
            name TEXT NOT NULL,
            mapping TEXT NOT NULL,
            mount TEXT NOT NULL,
            path TEXT NOT NULL,
            vault_version INTEGER,
            fingerprint TEXT,
            shape TEXT NOT NULL,
            owned INTEGER NOT NULL,
            pushed_at REAL,
            pending INTEGER NOT NULL DEFAULT 0,
            destination_kind TEXT NOT NULL DEFAULT 'worker_script',
            PRIMARY KEY (account_id, dispatch_namespace, script, destination_kind, name)
        )"""
    )
    conn.execute(
        "INSERT INTO bindings_3 (account_id, dispatch_namespace, script, name, mapping, mount, path, vault_version, "
        "fingerprint, shape, owned, pushed_at, pending) SELECT account_id, dispatch_namespace, script, name, mapping, "
        "mount, path, vault_version, fingerprint, shape, owned, pushed_at, pending FROM bindings"
    )
    conn.execute("DROP TABLE bindings")
    conn.execute("ALTER TABLE bindings_3 RENAME TO bindings")
    conn.execute("CREATE INDEX bindings_by_mapping ON bindings (mapping)")
    conn.execute("ALTER TABLE mapping_status ADD COLUMN staged_version INTEGER")
    conn.execute("ALTER TABLE mapping_status ADD COLUMN source_versions TEXT")  # JSON object; NULL: one source
    rows = conn.execute("SELECT mapping, last_error_code FROM mapping_status WHERE last_error_code LIKE 'Staged(%'")
    for mapping, code in rows.fetchall():
        new_code, version = legacy_staged(code)
        if version is not None:
            conn.execute(
                "UPDATE mapping_status SET last_error_code = ?, staged_version = ? WHERE mapping = ?",
                (new_code, version, mapping),
            )


# MIGRATIONS[n] takes a schema at version n to version n + 1 (0 is an empty file).
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_to_1, _migrate_to_2, _migrate_to_3)
assert len(MIGRATIONS) == SCHEMA_VERSION

_BINDING_COLUMNS = (
    "account_id, dispatch_namespace, script, name, mapping, mount, path, vault_version, fingerprint, shape, owned, "
    "pushed_at, pending, destination_kind"
)
_STATUS_COLUMNS = (
    "mapping, config_fingerprint, last_version, last_success_at, last_attempt_at, last_pushed_at, last_error_code, "
    "last_error, in_sync, staged_version, source_versions"
)
# Fixed column lists only; every value goes through a placeholder.
SELECT_BINDINGS = f"SELECT {_BINDING_COLUMNS} FROM bindings"  # noqa: S608
UPSERT_BINDING = f"INSERT OR REPLACE INTO bindings ({_BINDING_COLUMNS}) VALUES ({', '.join('?' * 14)})"  # noqa: S608
SELECT_STATUS = f"SELECT {_STATUS_COLUMNS} FROM mapping_status"  # noqa: S608
UPSERT_STATUS = f"INSERT OR REPLACE INTO mapping_status ({_STATUS_COLUMNS}) VALUES ({', '.join('?' * 11)})"  # noqa: S608


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def read_key(conn: sqlite3.Connection, location: str) -> bytes:
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


def initialise(conn: sqlite3.Connection, location: str) -> bytes:
    """Create or migrate the schema and return the HMAC key (created on first open)."""
    with transaction(conn):
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


TARGET_COLUMNS = "account_id = ? AND dispatch_namespace = ? AND script = ? AND destination_kind = ?"
TARGET_ORDER = "account_id, dispatch_namespace, script, destination_kind"


def target_key(target: Target) -> tuple[str, str, str, str]:
    return (target.account_id, target.dispatch_namespace or "", target.script, target.kind.value)


def binding_to_row(record: BindingRecord) -> tuple[Any, ...]:
    account, namespace, script, kind = target_key(record.target)
    return (
        account,
        namespace,
        script,
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
        kind,
    )


def binding_from_row(row: Sequence[Any], shared: dict[Any, Any] | None = None) -> BindingRecord:
    """The record of one row. Rows read together pass one ``shared`` dict, so that they share one
    ``Target`` per script and one string per mount and per shape: a state of 10,000 bindings on 100
    scripts makes 100 targets, not 10,000, and holds one copy of each repeated string."""
    account, namespace, script, name, mapping, mount, path, version, fingerprint, shape, owned, pushed_at = row[:12]
    pending, kind = row[12:]
    shared = {} if shared is None else shared
    kind = kind or DestinationKind.WORKER_SCRIPT.value  # chunk rows written before destination kinds
    target = shared.get((account, namespace, script, kind))
    if target is None:
        target = shared[(account, namespace, script, kind)] = Target(
            account, script, namespace or None, DestinationKind(kind)
        )
    mount = shared.setdefault(mount, mount)
    shape = shared.setdefault(shape, shape)
    return BindingRecord(
        target=target,
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


def status_to_row(status: MappingStatus) -> tuple[Any, ...]:
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
        status.staged_version,
        json.dumps(dict(status.source_versions), sort_keys=True) if status.source_versions else None,
    )


def status_from_row(row: Sequence[Any]) -> MappingStatus:
    mapping, config_fp, version, success_at, attempt_at, pushed_at, error_code, error, in_sync, staged, sources = row
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
        staged_version=staged,
        source_versions=tuple(sorted(json.loads(sources).items())) if sources else (),
    )
