"""``Devstack``: the Vault, Cloudflare and Kubernetes API emulators together, for local runs and tests.

```python
with Devstack(scripts=["my-worker"]) as stack:
    stack.describe()  # {"vault_addr", "vault_token", "cloudflare_api_base", "cloudflare_api_token",
                      #  "cloudflare_account_id", "kubernetes_api", "kubernetes_token",
                      #  "kubernetes_namespace", "workers_url" (when the Workers runtime runs)}
```

``workers``: ``"off"`` (the default here: most tests need no runtime), ``"auto"`` (run the deployed
Workers in workerd when it is found, else say why in ``workers_note`` and serve the API alone) or
``"on"`` (workerd is required: ``ValueError`` without it). ``workerd`` names the binary (else
``$SYNCD_WORKERD``, ``.tools``, ``PATH``: ``workers.tools``); ``workers_port`` is the Workers address
(0: any free port). See ``syncd.devstack.workers`` for what the runtime serves.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.devstack.cloudflare.edits import LatencySpec
from syncd.devstack.kubernetes import KubernetesEmulator
from syncd.devstack.vault import VaultEmulator
from syncd.devstack.vault.database_rotation import parse_role_spec
from syncd.devstack.workers.runtime import WorkersRuntime
from syncd.devstack.workers.tools import find_workerd, missing_workerd_reason

READY_TIMEOUT_SECONDS = 10.0


class Devstack:
    """The emulators on one host, started on construction; ports 0 pick free ports."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        vault_port: int = 0,
        cloudflare_port: int = 0,
        scripts: Iterable[str] = (),
        *,
        kubernetes_port: int = 0,
        kubernetes_namespace: str = "syncd",
        write_latency: str | None = None,
        workers: Literal["off", "auto", "on"] = "off",
        workerd: str | Path | None = None,
        workers_port: int = 0,
        db_roles: Iterable[str] = (),
    ) -> None:
        """``write_latency``: the Cloudflare write latency spec (``cloudflare.edits``); bad is ``ValueError``.

        ``db_roles``: ``NAME[:PERIOD]`` database static roles to seed in Vault (``database_rotation``).
        """
        spec = LatencySpec.parse(write_latency) if write_latency is not None else None
        self.workers: WorkersRuntime | None = None
        self.workers_note: str | None = None
        binary = find_workerd(workerd) if workers != "off" else None
        if workers != "off" and binary is None:
            self.workers_note = missing_workerd_reason(workerd)
            if workers == "on":
                raise ValueError(self.workers_note)
        with contextlib.ExitStack() as started:  # on any failure, stop what already runs
            self.vault = VaultEmulator(host=host, port=vault_port).start()
            started.callback(self.vault.stop)
            for role_spec in db_roles:
                self.vault.seed_database_static_role(*parse_role_spec(role_spec))
            self.cloudflare = CloudflareEmulator(
                host=host, port=cloudflare_port, scripts=tuple(scripts), write_latency=spec
            ).start()
            started.callback(self.cloudflare.stop)
            self.kubernetes = KubernetesEmulator(
                host=host, port=kubernetes_port, namespace=kubernetes_namespace
            ).start()
            started.callback(self.kubernetes.stop)
            if binary is not None:
                self.workers = WorkersRuntime(
                    self.cloudflare.store,
                    binary,
                    default_account=self.cloudflare.account_id,
                    host=host,
                    port=workers_port,
                    secrets_store_value=self.cloudflare.secrets_store_value,
                ).start()
            started.pop_all()
        self._running = True

    def start(self) -> Devstack:
        """Already running after construction; kept for symmetry with the emulators."""
        return self

    def wait_until_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Return once every emulator accepts TCP connections; ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        urls = [self.vault.url, self.cloudflare.url, self.kubernetes.url]
        if self.workers is not None:
            urls.append(self.workers.url)
        for url in urls:
            _wait_for_port(url, deadline)

    def describe(self) -> dict[str, str]:
        described = {
            "vault_addr": self.vault.url,
            "vault_token": self.vault.root_token,
            "cloudflare_api_base": self.cloudflare.api_base,
            "cloudflare_api_token": self.cloudflare.api_token,
            "cloudflare_account_id": self.cloudflare.account_id,
            "kubernetes_api": self.kubernetes.url,
            "kubernetes_token": self.kubernetes.token,
            "kubernetes_namespace": self.kubernetes.namespace,
        }
        if self.workers is not None:
            described["workers_url"] = self.workers.url
        return described

    def stop(self) -> None:
        if self._running:
            self._running = False
            if self.workers is not None:
                self.workers.stop()
            self.kubernetes.stop()
            self.cloudflare.stop()
            self.vault.stop()

    def __enter__(self) -> Devstack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _wait_for_port(url: str, deadline: float) -> None:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::"):  # noqa: S104 - a wildcard bind is reached through loopback
        host = "127.0.0.1"
    port = parts.port or 80
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{url} does not accept connections") from None
            time.sleep(0.01)
