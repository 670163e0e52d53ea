"""A real Prometheus for tests: own config, temporary storage, a free port, queried over its HTTP API.

Prometheus runs as a child process (Debian's ``prometheus`` binary, see ``prom_tools.binary``) that
scrapes the given targets every second and evaluates the given rule files every second. Waiting is
done by polling the query API until a condition holds or a deadline passes: never by sleeping a
guessed time. Deadlines are generous because CI runs on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.prom_tools import binary

START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 10.0
_tick = threading.Event()  # never set: wait() is the poll interval


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it); the caller binds it straight away."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Sample:
    """One series of an instant query's result."""

    labels: dict[str, str]
    value: float

    def __repr__(self) -> str:
        return f"{self.labels} {self.value}"


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        _tick.wait(interval)
    return condition()


class PrometheusServer:
    def __init__(self, workdir: Path, targets: dict[str, Sequence[str]], rule_files: Sequence[Path] = ()) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        jobs = [
            {"job_name": job, "scrape_interval": "1s", "scrape_timeout": "1s", "static_configs": [{"targets": list(t)}]}
            for job, t in targets.items()
        ]
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": jobs,
        }
        self.config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")  # JSON is YAML
        self._process: subprocess.Popen[bytes] | None = None
        self.queries: list[str] = []  # every response body, to check for leaked values

    def start(self) -> PrometheusServer:
        command = [
            binary("prometheus"),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            "--storage.tsdb.retention.time=1h",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        if not wait_until(self._ready, START_TIMEOUT_SECONDS):
            self.fail(f"Prometheus did not become ready within {START_TIMEOUT_SECONDS:.0f} s")
        return self

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            self.fail(f"Prometheus exited with {self._process.returncode}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=HTTP_TIMEOUT_SECONDS) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def fail(self, message: str) -> None:
        log = self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:] if self.log_path.exists() else ""
        pytest.fail(f"{message}\n--- prometheus log (tail) ---\n{log}", pytrace=False)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(STOP_TIMEOUT_SECONDS)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- HTTP API ------------------------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the ``data`` of a successful answer, else the test fails with the error."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_SECONDS) as response:
                body = response.read().decode()
        except urllib.error.HTTPError as error:  # 400 bad_data (a parse error), 422, 503
            body = error.read().decode()
        self.queries.append(body)
        answer = json.loads(body)
        if answer.get("status") != "success":
            pytest.fail(f"Prometheus refused {path} {params}: {answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def query(self, expr: str) -> list[Sample]:
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        if data["resultType"] != "vector":
            pytest.fail(f"{expr}: expected an instant vector, got {data['resultType']}")
        return [Sample(item["metric"], float(item["value"][1])) for item in data["result"]]

    def wait_for(
        self, expr: str, holds: Callable[[list[Sample]], bool], what: str, timeout: float = 120.0
    ) -> list[Sample]:
        """Poll ``expr`` until ``holds(samples)``; fail naming ``what`` and the last answer otherwise."""
        last: list[list[Sample]] = [[]]

        def check() -> bool:
            last[0] = self.query(expr)
            return holds(last[0])

        if not wait_until(check, timeout, interval=0.5):
            pytest.fail(f"{what}: not seen within {timeout:.0f} s; {expr} last returned {last[0]}", pytrace=False)
        return last[0]


def any_series(samples: list[Sample]) -> bool:
    return bool(samples)


def all_finite(samples: list[Sample]) -> bool:
    return bool(samples) and all(math.isfinite(s.value) for s in samples)
