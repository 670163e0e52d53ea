"""One writer per state file: the ``<state>.lock`` flock, and read-only readers that need no lock."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from syncd.engine.state import SCHEMA_VERSION, BindingRecord, StateStore
from syncd.errors import StateError, StateLocked
from tests.engine.conftest import REF, TARGET
from tests.lock_holder import holder_process

RECORD = BindingRecord(TARGET, "API_KEY", "edge", REF, 7, "f" * 64, "s" * 32, owned=True, pushed_at=1000.5)

def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def lock_of(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "syncd.sqlite3"


def test_a_second_writer_in_the_same_process_is_refused_naming_the_path_and_pid(path: Path) -> None:
    with StateStore.open(path), pytest.raises(StateLocked) as refused:
        StateStore.open(path)
    message = str(refused.value)
    assert str(path) in message
    assert f"(pid {os.getpid()})" in message
    assert "single writer" in message
    assert isinstance(refused.value, StateError)
    assert refused.value.exit_code == 2


def test_after_close_the_next_writer_gets_the_lock(path: Path) -> None:
    first = StateStore.open(path)
    first.record_bindings([RECORD])
    first.close()
    with StateStore.open(path) as second:
        assert second.bindings() == [RECORD]
        second.record_bindings([RECORD])


def test_lock_file_is_private_and_holds_the_writers_pid(path: Path) -> None:
    with StateStore.open(path):
        assert mode(lock_of(path)) == 0o600
        assert lock_of(path).read_text().strip() == str(os.getpid())


def test_a_loose_existing_lock_file_is_tightened(path: Path) -> None:
    path.parent.mkdir()
    lock_of(path).write_text("")
    lock_of(path).chmod(0o644)
    with StateStore.open(path):
        assert mode(lock_of(path)) == 0o600


def test_a_writer_in_another_process_blocks_until_it_dies(path: Path) -> None:
    with holder_process(path) as holder:
        with pytest.raises(StateLocked, match=rf"another syncd process \(pid {holder.pid}\) holds the state store"):
            StateStore.open(path)
        holder.kill()  # no close(): the kernel releases a dead process's flock
        holder.wait(timeout=10)
        with StateStore.open(path) as store:
            assert store.bindings() == []


def test_a_refused_open_releases_the_lock(path: Path) -> None:
    with StateStore.open(path):
        pass
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(StateError, match="newer than"):
        StateStore.open(path)
    fd = os.open(lock_of(path), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if still held
    finally:
        os.close(fd)


def test_a_reader_works_while_the_writer_holds_the_lock(path: Path) -> None:
    with StateStore.open(path) as writer:
        writer.record_bindings([RECORD])
        with StateStore.open(path, exclusive=False) as reader:
            assert reader.read_only
            assert reader.hmac_key == writer.hmac_key
            assert reader.bindings() == [RECORD]
            writer.forget_bindings(TARGET, ["API_KEY"])
            assert reader.bindings() == []  # sees the writer's commits


def test_a_reader_takes_no_lock_and_cannot_write(path: Path) -> None:
    with StateStore.open(path):
        pass
    with StateStore.open(path, exclusive=False) as reader:
        with StateStore.open(path) as writer:  # the reader did not lock the writer out
            assert not writer.read_only
        with pytest.raises(StateError, match="read-only"):
            reader.record_bindings([RECORD])
        with pytest.raises(StateError, match="read-only"):
            reader.remove_mapping_status("edge")
    with StateStore.open(path) as store:
        assert store.bindings() == []


def test_a_reader_never_creates_the_file(path: Path) -> None:
    with pytest.raises(StateError, match="no state store at"):
        StateStore.open(path, exclusive=False)
    assert not path.parent.exists()


def test_a_reader_does_not_migrate_an_older_schema(path: Path) -> None:
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', 1)")
    conn.close()
    with pytest.raises(StateError, match="schema version 1, older than"):
        StateStore.open(path, exclusive=False)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == 1
    conn.close()


def test_a_reader_refuses_a_file_with_no_syncd_state(path: Path) -> None:
    path.parent.mkdir()
    path.write_bytes(b"")
    with pytest.raises(StateError, match="holds no syncd state yet"):
        StateStore.open(path, exclusive=False)


def test_memory_stores_take_no_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with StateStore.open(":memory:") as a, StateStore.open(":memory:") as b:
        a.record_bindings([RECORD])
        assert b.bindings() == []
    assert list(tmp_path.iterdir()) == []
