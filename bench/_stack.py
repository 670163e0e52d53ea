"""The devstack in a subprocess, and the raw HTTP helpers the benchmark drives it with.

The emulators run in their own process (``python -m syncd.devstack``) so that their CPU time is
not counted as syncd's: the benchmark process then holds syncd (or the floor client) and nothing
else while a cycle is measured. Seeding, rotation and request counting use plain ``http.client``
with keep-alive connections (one per thread), not syncd's clients.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Endpoints:
    vault_addr: str
    vault_token: str
    cloudflare_api_base: str
    cloudflare_api_token: str
    cloudflare_account_id: str
    workers_url: str | None = None  # with ``DevstackProcess(workers=True)`` and workerd installed

    @property
    def cloudflare_url(self) -> str:
        return self.cloudflare_api_base.removesuffix("/client/v4")


class DevstackProcess:
    """``python -m syncd.devstack`` on free ports; stopped with SIGTERM.

    Without the Workers runtime unless ``workers=True``: workerd restarts on every deployment,
    which would weigh on what the other benchmarks measure (see ``bench/workers_runtime.py``).
    """

    def __init__(self, python: str = sys.executable, *, workers: bool = False, extra_args: Sequence[str] = ()) -> None:
        """``extra_args``: more ``syncd.devstack`` options, e.g. ``["--db-role", "app:5s"]``."""
        self._python = python
        self._workers = workers
        self._extra_args = list(extra_args)
        self._process: subprocess.Popen[str] | None = None
        self.endpoints: Endpoints | None = None

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> Endpoints:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [
                self._python,
                "-m",
                "syncd.devstack",
                "--vault-port",
                "0",
                "--cloudflare-port",
                "0",
                *([] if self._workers else ["--no-workers"]),
                *self._extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        line = _first_line(self._process, timeout)
        described = json.loads(line)
        self.endpoints = Endpoints(**{k: str(described[k]) for k in Endpoints.__dataclass_fields__ if k in described})
        return self.endpoints

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the devstack process so far (Linux ``/proc``), for context only."""
        if self._process is None:
            return None
        try:
            fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> DevstackProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The devstack's one JSON line, read on a helper thread so a silent child cannot hang us."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        process.kill()
        raise TimeoutError(f"the devstack printed nothing within {timeout} s") from None
    if not line.strip():
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
        error = process.stderr.read() if process.stderr is not None else ""
        raise RuntimeError(f"the devstack exited ({process.returncode}) before describing itself: {error[-2000:]}")
    return line


# -- raw HTTP -----------------------------------------------------------------------------------------


class Http:
    """One keep-alive ``http.client`` connection per thread to one base URL."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._headers = dict(headers or {})
        self._timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def request(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        body = None if payload is None else json.dumps(payload).encode()
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
                continue
            return response.status, (json.loads(raw) if raw.strip() else None)
        raise AssertionError("unreachable")  # pragma: no cover

    def ok(self, method: str, path: str, payload: Any = None) -> Any:
        status, body = self.request(method, path, payload)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {status}")
        return body


def in_parallel(work: Callable[[Any], None], items: Iterable[Any], threads: int = 8) -> None:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()


# -- the devstack's contents --------------------------------------------------------------------------


def new_value(label: str) -> str:
    """A fresh, recognisable test value (never printed by the benchmark)."""
    return f"bench-{label}-{secrets.token_hex(8)}"


class Admin:
    """Seeding, rotation and the request logs, over the real and admin APIs of both emulators."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.vault = Http(endpoints.vault_addr, {"X-Vault-Token": endpoints.vault_token})
        self.cloudflare = Http(endpoints.cloudflare_url)

    def write_secrets(self, values: dict[str, str], threads: int = 8) -> None:
        """KV v2 writes under ``secret/``: path -> the value of its single key ``value``."""

        def write(item: tuple[str, str]) -> None:
            self.vault.ok("POST", f"/v1/secret/data/{item[0]}", {"data": {"value": item[1]}})

        in_parallel(write, values.items(), threads)

    def create_scripts(self, names: Sequence[str]) -> None:
        account = self.endpoints.cloudflare_account_id
        for name in names:
            self.cloudflare.ok("POST", f"/__devstack/accounts/{account}/workers/scripts", {"name": name})

    def set_cloudflare_rate_limit(self, limit: int, window: float) -> None:
        self.cloudflare.ok("POST", "/__devstack/ratelimit", {"limit": limit, "window": window})

    def worker(self, script: str) -> dict[str, Any]:
        account = self.endpoints.cloudflare_account_id
        return dict(self.cloudflare.ok("GET", f"/__devstack/accounts/{account}/workers/scripts/{script}"))

    def requests(self, which: str) -> list[tuple[str, str, int]]:
        http = self.vault if which == "vault" else self.cloudflare
        logged = http.ok("GET", "/__devstack/requests")["requests"]
        return [(r["method"], r["path"], int(r["status"])) for r in logged]

    def timed_requests(self, which: str) -> list[tuple[str, str, int, float]]:
        """The request log with each request's time (epoch seconds, when the emulator answered)."""
        http = self.vault if which == "vault" else self.cloudflare
        logged = http.ok("GET", "/__devstack/requests")["requests"]
        return [(r["method"], r["path"], int(r["status"]), float(r["time"])) for r in logged]

    def clear_requests(self) -> None:
        self.vault.ok("DELETE", "/__devstack/requests")
        self.cloudflare.ok("DELETE", "/__devstack/requests")
