"""The state store: round trips, durability settings, permissions, schema versions, threads, no values."""

from __future__ import annotations

import base64
import sqlite3
import stat
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from syncd.engine.fingerprint import Fingerprinter
from syncd.engine.state import SCHEMA_VERSION, BindingRecord, StateStore
from syncd.engine.values import desired_bindings
from syncd.errors import StateError
from syncd.model import Target, VaultSecretRef
from tests.engine.conftest import ACCOUNT, CANARY, CANARY_2, REF, TARGET, leaks, mapping, secret

OTHER_TARGET = Target(ACCOUNT, "edge-api", "customers")  # same script, inside a dispatch namespace


def record(
    name: str = "API_KEY", *, target: Target = TARGET, mapping_name: str = "edge", **changes: object
) -> BindingRecord:
    base = BindingRecord(
        target=target,
        name=name,
        mapping=mapping_name,
        ref=REF,
        vault_version=7,
        fingerprint="f" * 64,
        shape="s" * 32,
        owned=True,
        pushed_at=1000.5,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def store() -> Iterator[StateStore]:
    with StateStore.open(":memory:") as opened:
        yield opened


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "syncd.sqlite3"


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# --- bindings ----------------------------------------------------------------------------------------


def test_binding_records_round_trip_with_every_field(store: StateStore) -> None:
    records = [
        record("API_KEY"),
        record("ADOPTED", fingerprint=None, owned=False, pushed_at=None, vault_version=None),
        record("API_KEY", target=OTHER_TARGET, ref=VaultSecretRef("kv", "legacy/app")),
    ]
    store.record_bindings(records)
    assert sorted(store.bindings(), key=repr) == sorted(records, key=repr)


def test_bindings_filter_by_target_and_mapping(store: StateStore) -> None:
    store.record_bindings(
        [record("A"), record("B", mapping_name="other"), record("A", target=OTHER_TARGET, mapping_name="other")]
    )
    assert [r.name for r in store.bindings(target=TARGET)] == ["A", "B"]
    assert [r.target for r in store.bindings(mapping="other")] == [TARGET, OTHER_TARGET]
    assert [(r.target, r.name) for r in store.bindings(target=OTHER_TARGET, mapping="other")] == [(OTHER_TARGET, "A")]


def test_records_read_together_share_their_targets_and_repeated_strings(store: StateStore) -> None:
    """A cycle reads every record: 10,000 bindings on 100 scripts must not make 10,000 targets."""
    store.record_bindings([record(f"B{i}", target=TARGET if i % 2 else OTHER_TARGET) for i in range(6)])

    records = store.bindings()

    by_target: dict[Target, list[BindingRecord]] = {}
    for r in records:
        by_target.setdefault(r.target, []).append(r)
    assert len(by_target) == 2
    for group in by_target.values():
        assert len({id(r.target) for r in group}) == 1
    assert len({id(r.ref.mount) for r in records}) == 1
    assert len({id(r.shape) for r in records}) == 1
    assert store.bindings(target=Target(ACCOUNT, "nowhere")) == []


def test_record_bindings_replaces_the_record_of_the_same_target_and_name(store: StateStore) -> None:
    store.record_bindings([record("A", vault_version=1)])
    store.record_bindings([record("A", vault_version=2, fingerprint="e" * 64)])
    (only,) = store.bindings()
    assert (only.vault_version, only.fingerprint) == (2, "e" * 64)


def test_record_bindings_is_all_or_nothing(store: StateStore) -> None:
    store.record_bindings([record("KEEP")])
    broken = record("BROKEN", shape=None)  # violates NOT NULL
    with pytest.raises(StateError, match="write failed"):
        store.record_bindings([record("NEW"), broken])
    assert [r.name for r in store.bindings()] == ["KEEP"]


def test_forget_bindings_removes_only_those_names_on_that_target(store: StateStore) -> None:
    store.record_bindings([record("A"), record("B"), record("A", target=OTHER_TARGET)])
    store.forget_bindings(TARGET, ["A", "NOT_THERE"])
    assert [(r.target, r.name) for r in store.bindings()] == [(TARGET, "B"), (OTHER_TARGET, "A")]


# --- mapping status ----------------------------------------------------------------------------------


def success(store: StateStore, at: float, *, version: int = 7, pushed: bool = True, config: str = "cfg1") -> None:
    store.record_mapping_result(
        "edge",
        at=at,
        config_fingerprint=config,
        version=version,
        in_sync=True,
        pushed=pushed,
        error_code=None,
        error=None,
    )


def failure(store: StateStore, at: float, *, version: int = 8, config: str = "cfg2") -> None:
    store.record_mapping_result(
        "edge",
        at=at,
        config_fingerprint=config,
        version=version,
        in_sync=False,
        pushed=False,
        error_code="CloudflareNotDeployed(10215)",
        error="latest version of the Worker is not deployed",
    )


def test_success_records_version_config_and_times(store: StateStore) -> None:
    success(store, 100.0)
    status = store.mapping_status("edge")
    assert status is not None
    assert (status.config_fingerprint, status.last_version, status.in_sync) == ("cfg1", 7, True)
    assert (status.last_success_at, status.last_attempt_at, status.last_pushed_at) == (100.0, 100.0, 100.0)
    assert (status.last_error_code, status.last_error) == (None, None)


def test_failure_keeps_the_last_success_and_what_it_applied(store: StateStore) -> None:
    success(store, 100.0)
    failure(store, 200.0)
    status = store.mapping_status("edge")
    assert status is not None
    assert (status.last_success_at, status.last_attempt_at, status.last_pushed_at) == (100.0, 200.0, 100.0)
    assert (status.config_fingerprint, status.last_version, status.in_sync) == ("cfg1", 7, False)
    assert status.last_error_code == "CloudflareNotDeployed(10215)"


def test_failure_before_any_success_leaves_success_fields_empty(store: StateStore) -> None:
    failure(store, 50.0)
    status = store.mapping_status("edge")
    assert status is not None
    assert (status.last_success_at, status.config_fingerprint, status.last_version) == (None, None, None)
    assert status.last_attempt_at == 50.0


def test_success_after_failure_clears_the_error_and_keeps_last_push_when_nothing_pushed(store: StateStore) -> None:
    success(store, 100.0)
    failure(store, 200.0)
    success(store, 300.0, version=8, pushed=False)
    status = store.mapping_status("edge")
    assert status is not None
    assert (status.last_error_code, status.last_error, status.in_sync) == (None, None, True)
    assert (status.last_success_at, status.last_pushed_at, status.last_version) == (300.0, 100.0, 8)


def test_all_mapping_status_is_sorted_and_remove_deletes_one(store: StateStore) -> None:
    for name in ("zeta", "alpha", "mid"):
        store.record_mapping_result(
            name, at=1.0, config_fingerprint=None, version=None, in_sync=True, pushed=False, error_code=None, error=None
        )
    store.remove_mapping_status("mid")
    assert [s.mapping for s in store.all_mapping_status()] == ["alpha", "zeta"]
    assert store.mapping_status("mid") is None


def test_mapping_names_unites_bindings_and_status(store: StateStore) -> None:
    store.record_bindings([record("A", mapping_name="only-bindings")])
    success(store, 1.0)
    assert store.mapping_names() == {"only-bindings", "edge"}


# --- the file ----------------------------------------------------------------------------------------


def test_file_is_created_private_in_a_new_private_directory(path: Path) -> None:
    with StateStore.open(path) as store:
        store.record_bindings([record()])
        assert mode(path.parent) == 0o700
        for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert mode(file) == 0o600, file.name


def test_existing_file_with_loose_permissions_is_tightened(path: Path) -> None:
    with StateStore.open(path):
        pass
    path.chmod(0o644)
    with StateStore.open(path):
        assert mode(path) == 0o600


def test_file_is_in_wal_mode(path: Path) -> None:
    with StateStore.open(path):
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()


def test_reopen_keeps_the_hmac_key_and_the_records(path: Path) -> None:
    with StateStore.open(path) as first:
        key = first.hmac_key
        first.record_bindings([record()])
    with StateStore.open(path) as second:
        assert second.hmac_key == key
        assert second.bindings() == [record()]
    assert len(key) == 32


def test_each_new_store_gets_its_own_random_key(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "a.db") as a, StateStore.open(tmp_path / "b.db") as b:
        assert a.hmac_key != b.hmac_key


def test_a_newer_schema_is_refused(path: Path) -> None:
    with StateStore.open(path):
        pass
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(StateError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        StateStore.open(path)


def test_an_older_schema_is_migrated(path: Path) -> None:
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', 0)")
    conn.close()
    with StateStore.open(path) as store:
        store.record_bindings([record()])
        assert store.bindings() == [record()]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_a_file_that_is_not_sqlite_is_refused(path: Path) -> None:
    path.parent.mkdir()
    path.write_bytes(b"this is not a database, just some text long enough to have a header" * 4)
    with pytest.raises(StateError, match="not a usable SQLite database"):
        StateStore.open(path)


def test_a_closed_store_refuses_use(store: StateStore) -> None:
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.bindings()
    store.close()  # closing twice is harmless


# --- threads -----------------------------------------------------------------------------------------


def test_concurrent_record_bindings_from_16_threads_lose_nothing(path: Path) -> None:
    threads, per_thread = 16, 25
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    with StateStore.open(path) as store:

        def work(index: int) -> None:
            try:
                start.wait(timeout=10)
                for n in range(per_thread):
                    store.record_bindings([record(f"T{index}_{n}", pushed_at=float(n))])
                    store.bindings(target=TARGET)  # readers interleave with writers
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
        assert errors == []
        assert not any(worker.is_alive() for worker in workers)
        names = {r.name for r in store.bindings()}
    assert names == {f"T{i}_{n}" for i in range(threads) for n in range(per_thread)}


# --- no values ---------------------------------------------------------------------------------------


def test_no_value_reaches_the_state_files_after_a_realistic_sequence(path: Path) -> None:
    key_canary = base64.b64encode(CANARY_2.encode() * 2).decode()  # 50 bytes: a valid HMAC key
    m = mapping(
        secret_text={"keys": {"api_key": "API_KEY"}},
        secret_key=[
            {
                "vault_key": "signing_key",
                "binding": "SIGNING_KEY",
                "format": "raw",
                "algorithm": {"name": "HMAC", "hash": "SHA-256"},
                "usages": ["sign"],
            }
        ],
    )
    with StateStore.open(path) as store:
        fingerprinter = Fingerprinter(store.hmac_key)
        for version, value in ((7, CANARY), (8, CANARY + "-rotated")):
            wanted = desired_bindings(m, TARGET, secret({"api_key": value, "signing_key": key_canary}, version))
            store.record_bindings(
                [
                    BindingRecord(
                        target=b.target,
                        name=b.name,
                        mapping=b.mapping,
                        ref=REF,
                        vault_version=version,
                        fingerprint=fingerprinter.of(b.body),
                        shape=b.shape(),
                        owned=True,
                        pushed_at=float(version),
                    )
                    for b in wanted
                ]
            )
            store.record_mapping_result(
                "edge",
                at=float(version),
                config_fingerprint="cfg",
                version=version,
                in_sync=True,
                pushed=True,
                error_code=None,
                error=None,
            )
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        assert {p.name for p in files} >= {path.name, f"{path.name}-wal"}
        blob = b"".join(p.read_bytes() for p in files)
        assert len(store.bindings()) == 2
    blob += path.read_bytes()  # after close, the WAL is checkpointed into the main file
    assert leaks(blob, (CANARY, CANARY_2, key_canary, base64.b64encode(CANARY.encode()).decode())) == []


# --- schema 2: write intents -------------------------------------------------------------------------

SCHEMA_1_BINDINGS = """CREATE TABLE bindings (
    account_id TEXT NOT NULL, dispatch_namespace TEXT NOT NULL, script TEXT NOT NULL, name TEXT NOT NULL,
    mapping TEXT NOT NULL, mount TEXT NOT NULL, path TEXT NOT NULL, vault_version INTEGER, fingerprint TEXT,
    shape TEXT NOT NULL, owned INTEGER NOT NULL, pushed_at REAL,
    PRIMARY KEY (account_id, dispatch_namespace, script, name))"""
SCHEMA_1_STATUS = """CREATE TABLE mapping_status (
    mapping TEXT PRIMARY KEY, config_fingerprint TEXT, last_version INTEGER, last_success_at REAL,
    last_attempt_at REAL, last_pushed_at REAL, last_error_code TEXT, last_error TEXT, in_sync INTEGER NOT NULL)"""


def test_a_pending_intent_round_trips_and_is_replaced_by_the_confirmed_record(store: StateStore) -> None:
    intent = record(fingerprint=None, vault_version=None, pushed_at=None, pending=True)
    store.record_bindings([intent])
    assert store.bindings() == [intent]
    store.record_bindings([record()])
    (confirmed,) = store.bindings()
    assert confirmed == record()
    assert confirmed.pending is False


def test_a_schema_1_file_is_migrated_keeping_its_bindings_as_not_pending(path: Path) -> None:
    path.parent.mkdir()
    key = b"K" * 32
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', 1)")
        conn.execute("INSERT INTO meta VALUES ('hmac_key', ?)", (key,))
        conn.execute(SCHEMA_1_BINDINGS)
        conn.execute("CREATE INDEX bindings_by_mapping ON bindings (mapping)")
        conn.execute(SCHEMA_1_STATUS)
        conn.execute(
            "INSERT INTO bindings VALUES (?, '', ?, 'API_KEY', 'edge', ?, ?, 7, ?, ?, 1, 1000.5)",
            (ACCOUNT, TARGET.script, REF.mount, REF.path, "f" * 64, "s" * 32),
        )
        conn.execute(
            "INSERT INTO bindings VALUES (?, '', ?, 'ADOPTED', 'edge', ?, ?, NULL, NULL, ?, 0, NULL)",
            (ACCOUNT, TARGET.script, REF.mount, REF.path, "s" * 32),
        )
    conn.close()
    with StateStore.open(path) as store:
        assert store.hmac_key == key
        assert store.bindings() == [
            record("ADOPTED", fingerprint=None, vault_version=None, owned=False, pushed_at=None),
            record(),
        ]
        assert [r.pending for r in store.bindings()] == [False, False]
        store.record_bindings([record("NEW", fingerprint=None, vault_version=None, pushed_at=None, pending=True)])
    with StateStore.open(path) as reopened:
        assert {r.name: r.pending for r in reopened.bindings()} == {"ADOPTED": False, "API_KEY": False, "NEW": True}
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == SCHEMA_VERSION == 3
    conn.close()
