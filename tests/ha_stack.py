"""Two (or more) ``syncd run`` replicas against one devstack: Vault, Cloudflare and the Kubernetes API.

Each replica is a real process with its own Kubernetes service-account token (so one can be cut off
from the API alone), leader election on one Lease, and the ``kubernetes`` state backend on Secrets
the "manifests" (this harness) created. Every Cloudflare request carries the replica's name in its
User-Agent, so the emulator's request log says which replica wrote what, and when.

Shared by tests/app/test_high_availability.py and bench/failover.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import hvac

from syncd.devstack.kubernetes import SECRETS
from syncd.devstack.kubernetes.status import StatusError
from syncd.devstack.stack import Devstack

SCRIPT = "app-worker"
QUIET_SCRIPT = "quiet-worker"  # its mapping never changes: a takeover must not call Cloudflare for it
API_PATH = "app/api"
QUIET_PATH = "app/quiet"
LEASE = "syncd-leader"
NAMESPACE = "syncd"
STATE_SECRETS = tuple(f"syncd-state-{i}" for i in range(2))
FINGERPRINT_KEY = "ha-fingerprint-key-0123456789abcdef0123456789"  # not a value: keys the HMACs


class Replica:
    def __init__(self, name: str, process: subprocess.Popen[str], log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def url(self) -> str | None:
        """The ops server's address, from its "ops server listening" log line."""
        for line in self.log().splitlines():
            if '"ops server listening"' in line:
                return str(json.loads(line)["url"])
        return None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(timeout=30)
        return self.process.returncode


class HaStack:
    """The devstack, seeded: two secrets, two Workers, the state Secrets, one token per replica."""

    def __init__(
        self, workdir: Path, *, lease_seconds: float = 6.0, interval_seconds: float = 60.0, server: bool = False
    ) -> None:
        self.workdir = workdir
        self.server = server
        self.lease_seconds = lease_seconds
        self.interval_seconds = interval_seconds
        self.stack = Devstack(scripts=[SCRIPT, QUIET_SCRIPT], kubernetes_namespace=NAMESPACE)
        self.stack.wait_until_ready()
        self.vault = hvac.Client(url=self.stack.vault.url, token=self.stack.vault.root_token)
        self.write(API_PATH, "canary-ha-initial-5b1c")
        self.write(QUIET_PATH, "canary-ha-quiet-9d2e")
        for name in STATE_SECRETS:
            self.stack.kubernetes.put_object(SECRETS, {"metadata": {"name": name}, "type": "Opaque"})
        self.replicas: list[Replica] = []
        self.tokens: dict[str, str] = {}
        key_file = workdir / "fingerprint-key"
        key_file.write_text(FINGERPRINT_KEY)
        key_file.chmod(0o600)

    def write(self, path: str, value: str) -> None:
        self.vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"value": value}, mount_point="secret")

    def start(self, name: str) -> Replica:
        home = self.workdir / name
        home.mkdir()
        token = self.stack.kubernetes.add_token(f"system:serviceaccount:{NAMESPACE}:{name}")
        self.tokens[name] = token
        (home / "token").write_text(token)
        config = home / "syncd.toml"
        config.write_text(self._config(name, home))
        env = {
            **os.environ,
            "SYNCD_TEST_VAULT_TOKEN": self.stack.vault.root_token,
            "SYNCD_TEST_CF_TOKEN": self.stack.cloudflare.api_token,
        }
        log_path = home / "syncd.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "syncd", "run", "--config", str(config), "--log-format", "json"],
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
        replica = Replica(name, process, log_path)
        self.replicas.append(replica)
        return replica

    def _config(self, name: str, home: Path) -> str:
        kube = self.stack.kubernetes.url
        renew = self.lease_seconds * 2 / 3
        return f"""
[vault]
address = "{self.stack.vault.url}"
timeout_seconds = 5

[vault.auth]
method = "token"
token = {{ env = "SYNCD_TEST_VAULT_TOKEN" }}

[cloudflare]
api_base = "{self.stack.cloudflare.api_base}"
account_id = "{self.stack.cloudflare.account_id}"
timeout_seconds = 5
retry_attempts = 2

[cloudflare.auth]
api_token = {{ env = "SYNCD_TEST_CF_TOKEN" }}

[sync]
interval_seconds = {self.interval_seconds}
jitter_seconds = 0
cycle_timeout_seconds = 20
shutdown_grace_seconds = 5
fingerprint_key = {{ file = "{self.workdir / "fingerprint-key"}" }}

[state]
backend = "kubernetes"

[state.kubernetes]
secret_count = {len(STATE_SECRETS)}

[leader_election]
enabled = true
api_url = "{kube}"
namespace = "{NAMESPACE}"
identity = "{name}"
token_file = "{home / "token"}"
lease_name = "{LEASE}"
lease_duration_seconds = {self.lease_seconds}
renew_deadline_seconds = {renew:.3f}
retry_period_seconds = {self.lease_seconds * 2 / 15:.3f}

[server]
enabled = {"true" if self.server else "false"}
bind = "127.0.0.1"
port = 0

[logging]
format = "json"
level = "info"

[[mapping]]
name = "api"
vault = {{ mount = "secret", path = "{API_PATH}" }}
target = {{ script = "{SCRIPT}" }}
secret_text = {{ keys = {{ value = "API_KEY" }} }}

[[mapping]]
name = "quiet"
vault = {{ mount = "secret", path = "{QUIET_PATH}" }}
target = {{ script = "{QUIET_SCRIPT}" }}
secret_text = {{ keys = {{ value = "QUIET_KEY" }} }}
"""

    # -- what the emulators saw ---------------------------------------------------------------------

    def holder(self) -> str | None:
        try:
            lease = self.stack.kubernetes.lease(LEASE, NAMESPACE)
        except StatusError:  # not created yet
            return None
        holder = lease.get("spec", {}).get("holderIdentity")
        return holder or None

    def api_key(self) -> str | None:
        body = self.stack.cloudflare.secrets_of(SCRIPT).get("API_KEY")
        return None if body is None else body.get("text")

    def cloudflare_requests(self) -> list[dict[str, Any]]:
        with self.stack.cloudflare.state.lock:
            return [r for r in self.stack.cloudflare.state.requests if r["path"].startswith("/client/v4")]

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.cloudflare_requests() if r["method"] != "GET"]

    @staticmethod
    def writer(request: dict[str, Any]) -> str:
        agent = str(request.get("user_agent") or "")
        return agent.rsplit("(", 1)[-1].rstrip(")") if "(" in agent else agent

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()
        threading.Thread(target=self.stack.stop, daemon=True).start()
