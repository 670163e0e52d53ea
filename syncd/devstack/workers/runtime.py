"""``WorkersRuntime``: the deployed versions of every script, served by one workerd process.

```python
runtime = WorkersRuntime(emulator.store, workerd_path, default_account=emulator.account_id).start()
runtime.url            # "http://127.0.0.1:PORT": GET {url}/{script}/ reaches that script's Worker
runtime.wait_settled() # every deployment so far is being served
runtime.status()       # generation, what is served (no values), the last reload's timings
```

Every new deployment in the store (a secret write, a version deploy, a gradual split) marks the
runtime stale (``WorkerStore.deploy_listeners``). A background thread waits until no change came
for ``debounce_seconds`` (at most ``max_delay_seconds`` after the first), renders the config
(``config``) and, when it differs from the one serving, starts a new workerd on the same socket
and stops the old one (``process``). A burst of writes is one reload. A config workerd refuses
(a key it cannot import, an unknown compatibility flag) leaves the previous one serving; the
error is in ``status()["error"]`` and on stderr (without values: workerd's own message).
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from syncd.devstack.cloudflare.store import WorkerStore
from syncd.devstack.workers.bridge import RuntimeBridge, SecretsStoreValue
from syncd.devstack.workers.config import RenderedConfig, describe_plan, render, snapshot
from syncd.devstack.workers.process import WorkerdFailed, WorkerdProcess, version_date, workerd_version

DEBOUNCE_SECONDS = 0.05
MAX_DELAY_SECONDS = 1.0


@dataclass(frozen=True)
class ReloadTiming:
    """Seconds spent on one reload, and its size."""

    render_seconds: float
    write_seconds: float
    start_seconds: float  # from starting workerd to its listening
    total_seconds: float
    scripts: int
    versions: int
    config_bytes: int
    restarted: bool  # False: the rendered config was the one serving already


class WorkersRuntime:
    def __init__(
        self,
        store: WorkerStore,
        workerd: Path,
        *,
        default_account: str,
        host: str = "127.0.0.1",
        port: int = 0,
        secrets_store_value: SecretsStoreValue | None = None,
        debounce_seconds: float = DEBOUNCE_SECONDS,
        max_delay_seconds: float = MAX_DELAY_SECONDS,
    ) -> None:
        self.store = store
        self.workerd = workerd
        self.version = workerd_version(workerd)
        self.default_account = default_account
        self.debounce_seconds = debounce_seconds
        self.max_delay_seconds = max_delay_seconds
        self._socket = socket.create_server((host, port), backlog=1024)
        self._bridge = RuntimeBridge(self.status, secrets_store_value)
        self._dir = Path(tempfile.mkdtemp(prefix="syncd-workers-"))  # mode 0700: the config holds values
        self._lock = threading.Condition()
        self._reload_lock = threading.Lock()
        self._changes = 0  # deployments seen
        self._applied = 0  # deployments reflected in the serving (or refused) config
        self._process: WorkerdProcess | None = None
        self._fingerprint: str | None = None
        self._generation = 0
        self._served: dict[str, Any] = {}
        self._error: str | None = None
        self.timings: list[ReloadTiming] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="workers-runtime", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def start(self) -> WorkersRuntime:
        """Serve what is deployed now (raises ``WorkerdFailed`` if workerd cannot), then follow changes."""
        self._bridge.start()
        with self.store.lock:
            self.store.deploy_listeners.append(self._changed)
        try:
            self.reload()
            if self._process is None:
                raise WorkerdFailed(self._error or "workerd did not start")
        except BaseException:
            self.stop()
            raise
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        with self.store.lock:
            if self._changed in self.store.deploy_listeners:
                self.store.deploy_listeners.remove(self._changed)
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._reload_lock:
            if self._process is not None:
                self._process.stop()
                self._process = None
        self._bridge.stop()
        self._socket.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _changed(self) -> None:
        with self._lock:
            self._changes += 1
            self._lock.notify_all()

    # -- reloading --------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._changes == self._applied and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                first = time.monotonic()
                seen = self._changes
                while not self._stopping:  # debounce: until quiet, or the longest delay
                    wait = min(self.debounce_seconds, first + self.max_delay_seconds - time.monotonic())
                    if wait <= 0:
                        break
                    self._lock.wait(wait)
                    if self._changes == seen:
                        break
                    seen = self._changes
            self.reload()

    def reload(self) -> ReloadTiming | None:
        """Serve what is deployed now; ``None`` when workerd refused it (the old config serves on)."""
        with self._reload_lock:
            with self._lock:
                changes = self._changes
            started = time.monotonic()
            served = snapshot(self.store)
            rendered = render(
                served,
                default_account=self.default_account,
                runtime_port=self._bridge.port,
                max_compatibility_date=version_date(self.version),
            )
            rendered_at = time.monotonic()
            timing: ReloadTiming | None
            if rendered.fingerprint == self._fingerprint:
                timing = ReloadTiming(rendered_at - started, 0.0, 0.0, rendered_at - started, 0, 0, 0, False)
            else:
                timing = self._switch(rendered, started, rendered_at)
                if timing is not None:
                    self._served = describe_plan(served)
            with self._lock:
                self._applied = max(self._applied, changes)
                if timing is not None:
                    self.timings.append(timing)
                self._lock.notify_all()
            return timing

    def _switch(self, rendered: RenderedConfig, started: float, rendered_at: float) -> ReloadTiming | None:
        generation = self._generation + 1
        config_path = self._write(rendered, generation)
        written = time.monotonic()
        process = WorkerdProcess(self.workerd, config_path, self._socket.fileno(), self._dir / "workerd.log")
        try:
            process.wait_listening()
        except WorkerdFailed as exc:
            self._error = f"generation {generation} refused: {exc}"
            print(f"syncd devstack: the Workers runtime kept its previous config: {exc}", file=sys.stderr, flush=True)
            config_path.unlink(missing_ok=True)
            return None
        listening = time.monotonic()
        previous, self._process = self._process, process
        if previous is not None:
            previous.stop()
        (self._dir / f"config-{self._generation}.capnp").unlink(missing_ok=True)
        self._generation, self._fingerprint, self._error = generation, rendered.fingerprint, None
        finished = time.monotonic()
        return ReloadTiming(
            render_seconds=rendered_at - started,
            write_seconds=written - rendered_at,
            start_seconds=listening - written,
            total_seconds=finished - started,
            scripts=rendered.scripts,
            versions=rendered.versions,
            config_bytes=len(rendered.text),
            restarted=True,
        )

    def _write(self, rendered: RenderedConfig, generation: int) -> Path:
        for relative, content in rendered.files.items():
            path = self._dir / relative
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
        config_path = self._dir / f"config-{generation}.capnp"
        config_path.touch(mode=0o600)
        config_path.write_text(rendered.text, encoding="ascii")
        return config_path

    # -- observing ----------------------------------------------------------------------------------

    def wait_settled(self, timeout: float = 30.0) -> bool:
        """Wait until every deployment made so far is served (or was refused); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._applied < self._changes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True

    def status(self) -> dict[str, Any]:
        with self._lock:
            last = self.timings[-1] if self.timings else None
            return {
                "runtime": self.version,
                "url": self.url,
                "generation": self._generation,
                "pid": self._process.pid if self._process is not None else None,
                "settled": self._applied >= self._changes,
                "error": self._error,
                "last_reload": asdict(last) if last is not None else None,
                "serving": self._served,
            }
