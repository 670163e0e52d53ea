"""The composed part of ``syncd demo``: a ``DATABASE_URL`` built by a template from a KV secret and a
database static role, arriving after a rotation of one of its sources, then after a rotation Vault
makes by itself on its schedule (no request: syncd checks the role just after the time Vault
announced). Values are never printed: arrival is proven by comparing with what Vault holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import hvac

SCRIPT = "orders-worker"
BINDING = "DATABASE_URL"
ROLE = "orders"
ROLE_PERIOD_SECONDS = 8  # Vault's shortest is 5 s; the demo waits for one scheduled rotation
ROLE_SPEC = f"{ROLE}:{ROLE_PERIOD_SECONDS}s"
CONFIG_PATH = "demo/orders-db"

MAPPING = f"""
[[mapping]]
name = "orders-db"
target = {{ script = "{SCRIPT}" }}
[mapping.sources.db]                # a database static role: Vault rotates its password itself
kind = "database"
role = "{ROLE}"
[mapping.sources.cfg]               # a KV secret with the host
mount = "secret"
path = "{CONFIG_PATH}"
[mapping.templates]
{BINDING} = "postgres://{{{{ db.username }}}}:{{{{ db.password | urlencode }}}}@{{{{ cfg.host }}}}/orders"
"""


class View(Protocol):
    def ok(self, text: str) -> str: ...

    def bad(self, text: str) -> str: ...

    def line(self, text: str = "") -> None: ...


def start(view: View, vault: hvac.Client, held: Callable[[], Any], stop: threading.Event) -> ComposedDemo:
    """Seed the KV source (the static role is the devstack's, ``ROLE_SPEC``) and return the demo part."""
    vault.secrets.kv.v2.create_or_update_secret(path=CONFIG_PATH, secret={"host": "db-1.orders.internal"})
    return ComposedDemo(view, vault, held, stop)


def _expected(vault: hvac.Client) -> tuple[str, str]:
    """The URL the Worker should hold now, and the role's ``last_vault_rotation``."""
    creds = vault.secrets.database.get_static_credentials(ROLE)["data"]
    config = vault.secrets.kv.v2.read_secret_version(path=CONFIG_PATH, raise_on_deleted_version=True)
    host = config["data"]["data"]["host"]
    url = f"postgres://{creds['username']}:{quote(str(creds['password']), safe='')}@{host}/orders"
    return url, str(creds["last_vault_rotation"])


def _epoch(rfc3339: str) -> float:
    main, _, rest = rfc3339.rstrip("Z").partition(".")
    return datetime.fromisoformat(main + "+00:00").timestamp() + (float("0." + rest[:9]) if rest else 0.0)


class ComposedDemo:
    def __init__(self, view: View, vault: hvac.Client, held: Callable[[], Any], stop: threading.Event) -> None:
        """``held()``: the Worker's ``DATABASE_URL`` text (or None)."""
        self._view, self._vault, self._held, self._stop = view, vault, held, stop

    def _wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._stop.is_set():
            if condition():
                return True
            if time.monotonic() > deadline:
                return False
            self._stop.wait(0.02)
        return False

    def initial(self, timeout: float) -> None:
        url, _ = _expected(self._vault)
        mark = self._view.ok("✓") if self._wait(lambda: self._held() == url, timeout) else self._view.bad("✗ (not yet)")
        self._view.line(f"initial    {SCRIPT}.{BINDING} {mark}")

    def rotate_one_source(self, timeout: float) -> float | None:
        """A new host in the KV source: the template is rendered anew over both sources."""
        written = self._vault.secrets.kv.v2.create_or_update_secret(
            path=CONFIG_PATH, secret={"host": "db-2.orders.internal"}
        )
        started = time.monotonic()
        url, _ = _expected(self._vault)
        self._view.line()
        if not self._wait(lambda: self._held() == url, timeout):
            self._view.line(f"composed   {SCRIPT}.{BINDING} {self._view.bad('✗ not arrived')}")
            return None
        delay = time.monotonic() - started
        self._view.line(
            f"composed   secret/{CONFIG_PATH} → v{written['data']['version']}: {SCRIPT}.{BINDING} "
            f"{self._view.ok('✓')} {delay:.2f}s (template over db + cfg)"
        )
        return delay

    def rounds(self, timeout: float) -> None:
        self.rotate_one_source(timeout)
        self.scheduled_rotation(timeout)

    def scheduled_rotation(self, timeout: float) -> float | None:
        """Wait for the rotation Vault makes by itself; no request tells syncd, its schedule does."""
        before, rotated_before = _expected(self._vault)
        creds = self._vault.secrets.database.get_static_credentials(ROLE)["data"]
        self._view.line(
            f"scheduled  database/static-creds/{ROLE}: Vault rotates the password by itself in {creds['ttl']}s "
            "(no request, nothing to be notified of; syncd checks just after that time)"
        )
        if not self._wait(lambda: self._held() not in (None, before), timeout + float(creds["ttl"])):
            self._view.line(f"scheduled  {SCRIPT}.{BINDING} {self._view.bad('✗ not arrived')}")
            return None
        arrived = time.time()
        url, rotated = _expected(self._vault)
        if self._held() != url or rotated == rotated_before:
            self._view.line(f"scheduled  {SCRIPT}.{BINDING} {self._view.bad('✗ not the rotated password')}")
            return None
        delay = arrived - _epoch(rotated)
        self._view.line(
            f"scheduled  password rotated by Vault → {SCRIPT}.{BINDING} {self._view.ok('✓')} "
            f"{delay:.2f}s after the rotation"
        )
        return delay


__all__ = ["MAPPING", "ROLE_SPEC", "SCRIPT", "ComposedDemo", "start"]
