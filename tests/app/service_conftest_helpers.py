"""Shared pieces of the app tests: both emulators seeded with canary secrets, a config file for them.

Credentials reach syncd through environment variables (set with ``monkeypatch``), so the config
file holds no secret. The canaries must reach Cloudflare and appear nowhere else.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import hvac
import pytest

from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.devstack.vault import VaultEmulator

CANARY_API_KEY = "canary-apikey-4e1b9a7c"
CANARY_WEBHOOK = "canary-webhook-c02d5f11"
CANARY_ROTATED = "canary-rotated-77aa0b3e"
CANARY_V1 = "canary-kv1-90f3e2d4"
CANARIES = (CANARY_API_KEY, CANARY_WEBHOOK, CANARY_ROTATED, CANARY_V1)

SCRIPT = "app-worker"
OTHER_SCRIPT = "search-worker"
API_PATH = "app/api"
V1_PATH = "search"


def leaked(*texts: str) -> list[str]:
    """Which canaries (or emulator credentials passed in ``extra``) appear in the texts: by index,
    so a failure message never prints a value."""
    return [f"canary#{i}" for i, c in enumerate(CANARIES) if any(c in t for t in texts)]


def leaked_any(secrets: list[str], *texts: str) -> list[str]:
    return [f"secret#{i}" for i, s in enumerate(secrets) if any(s in t for t in texts)]


class Stack:
    """A Vault emulator with two seeded secrets and a Cloudflare emulator with two scripts."""

    def __init__(self) -> None:
        self.vault = VaultEmulator().start()
        self.cf = CloudflareEmulator(scripts=[SCRIPT, OTHER_SCRIPT]).start()
        self.root = hvac.Client(url=self.vault.url, token=self.vault.root_token)
        self.write_api(CANARY_API_KEY, CANARY_WEBHOOK)
        self.root.secrets.kv.v1.create_or_update_secret(path=V1_PATH, secret={"token": CANARY_V1}, mount_point="kv")

    def write_api(self, api_key: str, webhook: str) -> None:
        self.root.secrets.kv.v2.create_or_update_secret(
            path=API_PATH, secret={"api_key": api_key, "webhook": webhook}, mount_point="secret"
        )

    def cloudflare_calls(self) -> list[dict[str, Any]]:
        """The real API requests the Cloudflare emulator received (admin routes left out)."""
        return [r for r in list(self.cf.state.requests) if r["path"].startswith("/client/v4")]

    def clear_logs(self) -> None:
        self.cf.state.requests.clear()
        self.vault.state.requests.clear()

    def stop(self) -> None:
        # The HTTP servers poll for shutdown every 0.5 s: stop in the background.
        for emulator in (self.cf, self.vault):
            threading.Thread(target=emulator.stop, daemon=True).start()


@contextmanager
def running_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    stack = Stack()
    monkeypatch.setenv("SYNCD_TEST_VAULT_TOKEN", stack.vault.root_token)
    monkeypatch.setenv("SYNCD_TEST_CF_TOKEN", stack.cf.api_token)
    try:
        yield stack
    finally:
        stack.stop()


def config_text(stack: Stack, state_path: Path, *, extra_mapping: str = "", cf_token: str = "") -> str:
    token_ref = cf_token or '{ env = "SYNCD_TEST_CF_TOKEN" }'
    return f"""
[vault]
address = "{stack.vault.url}"
timeout_seconds = 5
concurrency = 2

[vault.auth]
method = "token"
token = {{ env = "SYNCD_TEST_VAULT_TOKEN" }}

[cloudflare]
api_base = "{stack.cf.api_base}"
account_id = "{stack.cf.account_id}"
retry_attempts = 1
timeout_seconds = 5

[cloudflare.auth]
api_token = {token_ref}

[sync]
state_path = "{state_path}"
cycle_timeout_seconds = 30
interval_seconds = 60
jitter_seconds = 0
shutdown_grace_seconds = 5

[server]
enabled = false

[logging]
format = "json"
level = "debug"

[[mapping]]
name = "app-api"
vault = {{ mount = "secret", path = "{API_PATH}" }}
target = {{ script = "{SCRIPT}" }}
secret_text = {{ keys = {{ api_key = "API_KEY", webhook = "WEBHOOK_SECRET" }} }}

[[mapping]]
name = "search-v1"
vault = {{ mount = "kv", path = "{V1_PATH}", kv_version = 1 }}
target = {{ script = "{OTHER_SCRIPT}" }}
secret_text = {{ all_keys = true, prefix = "SEARCH_", uppercase = true }}
{extra_mapping}
"""


def write_config(tmp_path: Path, stack: Stack, **kwargs: Any) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(config_text(stack, tmp_path / "state" / "syncd.sqlite3", **kwargs))
    return path


def holds_api_key(stack: Stack, value: str) -> bool:
    """The Worker ``SCRIPT`` holds ``value`` as its ``API_KEY``."""
    body = stack.cf.secrets_of(SCRIPT).get("API_KEY")
    return body is not None and body.get("text") == value


class _ServiceView(Protocol):
    def status(self) -> dict[str, Any]: ...

    def sync_mode(self) -> dict[str, Any]: ...


def swept_after_backstop(service: _ServiceView) -> Callable[[], bool]:
    """In backstop mode, and the full sweep its switch queued has finished (so a write made now
    starts a notification cycle of its own instead of merging into that sweep)."""

    def swept() -> bool:
        mode = service.sync_mode()
        last = service.status()["last_cycle"]
        return (
            mode["mode"] == "backstop"
            and last is not None
            and last["trigger"] == "interval"
            and last["started_at"] >= mode["since"]
        )

    return swept


def metrics_text(server_url: str) -> str:
    with urllib.request.urlopen(f"{server_url}/metrics", timeout=5) as response:
        text: str = response.read().decode()
    return text
