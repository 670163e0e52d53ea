"""The state file on disk: created private, held by one writer through ``<path>.lock``, opened read-only."""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from syncd.errors import StateError, StateLocked


def prepare_file(path: Path) -> None:
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


def acquire_writer_lock(path: Path) -> int:
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


def read_only_uri(path: Path) -> str:
    if not path.is_file():
        raise StateError(f"no state store at {path} (syncd once or syncd run creates it)")
    return f"{path.absolute().as_uri()}?mode=ro"
