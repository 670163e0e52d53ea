"""``syncd run`` as a child process against the devstack, as an operator runs it (no in-process wiring)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from syncd.devstack.stack import Devstack
from tests.monitoring.prometheus_server import HTTP_TIMEOUT_SECONDS, STOP_TIMEOUT_SECONDS, free_port, wait_until

START_TIMEOUT_SECONDS = 120.0


def config_text(stack: Devstack, workdir: Path, *, http_port: int, audit_port: int, mappings: str) -> str:
    """Credentials come from the environment (see ``SyncdProcess``): the file holds none."""
    return f"""
[vault]
address = "{stack.vault.url}"
timeout_seconds = 10

[vault.auth]
method = "token"
token = {{ env = "SYNCD_E2E_VAULT_TOKEN" }}

[cloudflare]
api_base = "{stack.cloudflare.api_base}"
account_id = "{stack.cloudflare.account_id}"
retry_attempts = 1
timeout_seconds = 10

[cloudflare.auth]
api_token = {{ env = "SYNCD_E2E_CF_TOKEN" }}

[sync]
state_path = "{workdir / "state.sqlite3"}"
interval_seconds = 2
jitter_seconds = 0
cycle_timeout_seconds = 60
shutdown_grace_seconds = 10

[server]
enabled = true
bind = "127.0.0.1"
port = {http_port}

[notifications]
audit_listen = "127.0.0.1:{audit_port}"

[logging]
format = "json"
level = "info"
{mappings}
"""


class SyncdProcess:
    """``python -m syncd run --config PATH`` with its log in ``workdir/syncd.log``."""

    def __init__(self, stack: Devstack, workdir: Path, mappings: str) -> None:
        self.http_port = free_port()
        self.audit_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.config_path = workdir / "syncd.toml"
        self.config_path.write_text(
            config_text(stack, workdir, http_port=self.http_port, audit_port=self.audit_port, mappings=mappings),
            encoding="utf-8",
        )
        self.log_path = workdir / "syncd.log"
        self._env = {
            **os.environ,
            "SYNCD_E2E_VAULT_TOKEN": stack.vault.root_token,
            "SYNCD_E2E_CF_TOKEN": stack.cloudflare.api_token,
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def start(self) -> SyncdProcess:
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "syncd", "run", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
            )
        if not wait_until(self._serving, START_TIMEOUT_SECONDS):
            self.fail(f"syncd run did not serve /metrics within {START_TIMEOUT_SECONDS:.0f} s")
        return self

    def _serving(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            self.fail(f"syncd run exited with {self._process.returncode}")
        try:
            self.metrics()
        except OSError:
            return False
        return True

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=HTTP_TIMEOUT_SECONDS) as response:
            return str(response.read().decode())

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n--- syncd log (tail) ---\n{self.log()[-4000:]}", pytrace=False)

    def stop(self) -> int | None:
        """SIGTERM, as Kubernetes stops a pod; the exit code (None if it had to be killed)."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                return self._process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(STOP_TIMEOUT_SECONDS)
                return None
        return self._process.returncode
