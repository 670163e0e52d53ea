"""One workerd process serving one config on a listening socket the devstack owns.

The devstack binds the Workers address itself and hands the socket to each workerd it starts
(``workerd serve CONFIG --socket-fd http=FD``). A reload starts the next process on the same socket,
waits for it to report that it listens (``--control-fd``: a JSON line ``{"event":"listen",
"socket":"http","port":N}`` per socket, workerd's ``serve --help``), and only then stops the previous
one. Connections that arrive meanwhile wait in the socket's backlog or are taken by either
process: none is refused. A config workerd refuses leaves the previous process serving.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
from pathlib import Path

from syncd.devstack.workers.config import HTTP_SOCKET

START_TIMEOUT_SECONDS = 60.0  # a thousand Workers on a loaded 2-core machine take a while
STOP_TIMEOUT_SECONDS = 5.0
LOG_TAIL_BYTES = 2000
_VERSION_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


class WorkerdFailed(RuntimeError):
    """workerd exited or did not listen in time; the message carries the end of its log."""


def workerd_version(binary: Path) -> str:
    """``workerd 2026-11-17`` (what ``workerd --version`` prints)."""
    done = subprocess.run(  # noqa: S603 - the workerd binary the user chose
        [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise WorkerdFailed(f"{binary} --version failed: {done.stderr.strip()[:200]}")
    return done.stdout.strip()


def version_date(version: str) -> str:
    """The newest compatibility date the runtime knows (its release date)."""
    found = _VERSION_DATE.search(version)
    return found.group(1) if found else "2025-01-01"


class WorkerdProcess:
    """A started ``workerd serve``; :meth:`wait_listening` before routing traffic to it."""

    def __init__(self, binary: Path, config_path: Path, socket_fd: int, log_path: Path) -> None:
        read_end, write_end = os.pipe()
        self.log_path = log_path
        self._log_offset = log_path.stat().st_size if log_path.exists() else 0
        with log_path.open("ab") as log:
            try:
                self.process = subprocess.Popen(  # noqa: S603 - our binary, our arguments
                    [
                        str(binary),
                        "serve",
                        str(config_path),
                        f"--socket-fd={HTTP_SOCKET}={socket_fd}",
                        f"--control-fd={write_end}",
                    ],
                    pass_fds=(socket_fd, write_end),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=config_path.parent,
                )
            finally:
                os.close(write_end)
        self._control = read_end

    def wait_listening(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        buffered = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise WorkerdFailed(f"workerd did not listen within {timeout:.0f} s{self._log_tail()}")
            ready, _, _ = select.select([self._control], [], [], min(remaining, 0.5))
            if not ready:
                continue
            chunk = os.read(self._control, 4096)
            if not chunk:  # the process closed its end: it exited
                code = self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
                raise WorkerdFailed(f"workerd exited with status {code}{self._log_tail()}")
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                if _is_listen_event(line):
                    return

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        if self._control >= 0:
            os.close(self._control)
            self._control = -1

    @property
    def pid(self) -> int:
        return self.process.pid

    def _log_tail(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                tail = log.read()[-LOG_TAIL_BYTES:].decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return f": {tail}" if tail else ""


def _is_listen_event(line: bytes) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and event.get("event") == "listen" and event.get("socket") == HTTP_SOCKET
