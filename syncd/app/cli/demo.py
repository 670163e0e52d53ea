"""``syncd demo``: the devstack, a sample config, the service, and rotations arriving live.

Starts both emulators, seeds Vault and the Workers, writes a config for them, starts the real
service (scheduler, HTTP endpoints, state store) in this process, then rotates Vault secrets and
shows each rotation arriving in the emulated Workers with its propagation delay: the first round
by polling, the next ones by Vault's socket audit device, which the demo enables in between. Then someone
edits a binding syncd owns by hand (the emulator's admin API, as the dashboard would): the drift check
finds it and syncd puts Vault's value back, shown with its delay. Then one secret that several
Workers share through the account's Secrets Store is rotated: one write reaches all of them, and
no Worker gets a new version. Last, a ``DATABASE_URL`` templated over a KV secret and a database
static role (``demo_composed``) arrives after a write to one of its sources, then after a rotation
Vault makes by itself on its schedule. Values are never
printed: arrival is proven by comparing with what was written. Ctrl-C stops everything cleanly.

When workerd is installed (``scripts/setup-workers.sh``) the devstack runs the Workers too, and
after each rotation the demo asks ``payments-worker`` itself what it sees: the default Worker
answers with a SHA-256 fingerprint of each binding, which changes with every rotation (and is
checked against the value written). The ``curl`` line it prints asks the same question by hand.
Without workerd the demo says so and shows the emulator's record only.

Only the command line imports this module; the daemon never does (it needs the devstack).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
import hvac

from syncd.app.cli import demo_composed
from syncd.app.service.daemon import Service
from syncd.app.service.logs import configure_logging
from syncd.app.service.wiring import build_service
from syncd.config import load_config
from syncd.devstack.stack import Devstack

SCRIPTS = ("payments-worker", "edge-router")
ARRIVAL_TIMEOUT_SECONDS = 30.0
WATCHED = ("payments-worker", "PAYMENTS_API_KEY")  # the binding whose fingerprint the Worker reports
STORE_NAME = "default_secrets_store"
SHARED_PATH = "demo/shared"
SHARED_SECRET = "db-password"  # the store secret every Worker binds (secrets_store_secrets)


@dataclass(frozen=True)
class DemoSecret:
    """One Vault secret of the demo and where its keys land (script, binding) per Vault key."""

    path: str
    lands: dict[str, tuple[tuple[str, str], ...]]

    def fresh_values(self) -> dict[str, str]:
        values = {key: f"demo-{secrets.token_hex(8)}" for key in self.lands}
        if "hmac" in values:
            values["hmac"] = base64.b64encode(secrets.token_bytes(32)).decode()
        return values


DEMO_SECRETS = (
    DemoSecret(
        "demo/payments",
        {
            "api_key": (("payments-worker", "PAYMENTS_API_KEY"), ("edge-router", "PAYMENTS_API_KEY")),
            "webhook_secret": (("payments-worker", "WEBHOOK_SECRET"),),
        },
    ),
    DemoSecret("demo/signing", {"hmac": (("edge-router", "SIGNING_KEY"),)}),
)


def demo_config(stack: Devstack, workdir: Path, interval: float) -> str:
    info = stack.describe()
    return f"""# Written by `syncd demo` for its devstack; see config.example.toml for every option.
[vault]
address = "{info["vault_addr"]}"
allow_inline_credentials = true     # development only: the devstack's root token
[vault.auth]
method = "token"
token = {{ value = "{info["vault_token"]}" }}

[cloudflare]
api_base = "{info["cloudflare_api_base"]}"
account_id = "{info["cloudflare_account_id"]}"
allow_inline_credentials = true     # development only
[cloudflare.auth]
api_token = {{ value = "{info["cloudflare_api_token"]}" }}

[sync]
interval_seconds = {interval}
jitter_seconds = 0
state_path = "{workdir / "state.sqlite3"}"
drift = "correct"                   # hand edits of the bindings syncd owns are put back
drift_check_interval_seconds = {interval}
drift_budget_share = 0.5            # the demo checks every few seconds; production keeps 0.1

[server]
bind = "127.0.0.1"
port = 0

[notifications]
audit_listen = "127.0.0.1:0"        # Vault's socket audit device connects here (enabled mid-demo)

[[mapping]]
name = "payments"
vault = {{ mount = "secret", path = "demo/payments" }}
target = {{ script = "payments-worker" }}
secret_text = {{ keys = {{ api_key = "PAYMENTS_API_KEY", webhook_secret = "WEBHOOK_SECRET" }} }}

[[mapping]]
name = "payments-edge"
vault = {{ mount = "secret", path = "demo/payments" }}
target = {{ script = "edge-router" }}
secret_text = {{ keys = {{ api_key = "PAYMENTS_API_KEY" }} }}

[[mapping]]
name = "shared-db"                  # one store secret, bound by every Worker: one write per rotation
vault = {{ mount = "secret", path = "{SHARED_PATH}" }}
target = {{ secrets_store = "{STORE_NAME}" }}
secret_text = {{ keys = {{ password = "{SHARED_SECRET}" }} }}

[[mapping]]
name = "signing"
vault = {{ mount = "secret", path = "demo/signing" }}
target = {{ script = "edge-router" }}
[[mapping.secret_key]]
vault_key = "hmac"
binding = "SIGNING_KEY"
format = "raw"
algorithm = {{ name = "HMAC", hash = "SHA-256" }}
usages = ["sign", "verify"]
""" + demo_composed.MAPPING


class LiveView:
    """Plain lines, coloured on a terminal."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._color = out.isatty()

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self._color else text

    def ok(self, text: str) -> str:
        return self._paint(text, "32")

    def bad(self, text: str) -> str:
        return self._paint(text, "31")

    def dim(self, text: str) -> str:
        return self._paint(text, "2")

    def line(self, text: str = "") -> None:
        self._out.write(text + "\n")
        self._out.flush()


def shared_value() -> dict[str, str]:
    return {"password": f"demo-{secrets.token_hex(8)}"}


def _store_writes(requests: Any) -> list[dict[str, Any]]:
    return [r for r in list(requests) if "/secrets_store/" in r["path"] and r["method"] in ("PATCH", "POST")]


@dataclass
class _DemoRun:
    view: LiveView
    stack: Devstack
    vault: hvac.Client
    stop: threading.Event
    store_id: str = ""

    def held(self, script: str, binding: str) -> Any:
        body = self.stack.cloudflare.secrets_of(script).get(binding)
        return None if body is None else body.get("text", body.get("key_base64"))

    def arrived(self, script: str, binding: str, value: str) -> bool:
        return bool(self.held(script, binding) == value)

    def wait_arrival(self, script: str, binding: str, value: str, deadline: float) -> bool:
        """Poll the emulated Worker every 20 ms until it holds the value; False at the deadline or stop."""
        while not self.stop.is_set():
            if self.arrived(script, binding, value):
                return True
            if time.monotonic() > deadline:
                return False
            self.stop.wait(0.02)
        return False

    def worker_fingerprint(self) -> tuple[str, int] | None:
        """(the SHA-256 the Worker reports for the watched binding, its version number), if it runs."""
        workers = self.stack.workers
        if workers is None:
            return None
        script, binding = WATCHED
        try:
            report = httpx.get(f"{workers.url}/{script}/", timeout=5).json()
            return str(report["bindings"][binding]["sha256"]), int(report["version"]["number"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    def show_worker(self, value: str, deadline: float) -> None:
        """The Worker's own answer once it carries ``value``'s fingerprint (the runtime reloads first)."""
        if self.stack.workers is None:
            return
        expected = hashlib.sha256(value.encode()).hexdigest()
        seen = self.worker_fingerprint()
        while (seen is None or seen[0] != expected) and time.monotonic() < deadline and not self.stop.is_set():
            self.stop.wait(0.02)
            seen = self.worker_fingerprint()
        script, binding = WATCHED
        if seen is not None and seen[0] == expected:
            self.view.line(
                self.view.dim(f"             the Worker itself: {script} v{seen[1]} reports {binding} sha256 ")
                + f"{seen[0][:16]}… {self.view.ok('✓')}"
            )
        else:
            self.view.line(f"             the Worker itself: {script} {self.view.bad('✗ still the old fingerprint')}")

    def seed(self) -> None:
        for secret in DEMO_SECRETS:
            self.vault.secrets.kv.v2.create_or_update_secret(path=secret.path, secret=secret.fresh_values())
        self.vault.secrets.kv.v2.create_or_update_secret(path=SHARED_PATH, secret=shared_value())
        cf = self.stack.cloudflare
        self.store_id = cf.secrets_store.create_store(cf.account_id, {"name": STORE_NAME}).id

    def rotate_shared(self) -> float | None:
        """One Vault write of the secret every Worker binds from the store: one PATCH, no version."""
        cf = self.stack.cloudflare
        versions = {s: cf.versions_of(s) for s in SCRIPTS}
        values = shared_value()
        before = len(_store_writes(cf.state.requests))
        self.vault.secrets.kv.v2.create_or_update_secret(path=SHARED_PATH, secret=values)
        started = time.monotonic()
        deadline = started + ARRIVAL_TIMEOUT_SECONDS
        while cf.secrets_store_value(cf.account_id, self.store_id, SHARED_SECRET) != values["password"]:
            if time.monotonic() > deadline or self.stop.wait(0.02):
                self.view.line(f"store      {SHARED_SECRET} {self.view.bad('✗ not rotated yet')}")
                return None
        delay = time.monotonic() - started
        logged = time.monotonic() + 1.0  # the request log notes a call once its answer is sent
        while len(_store_writes(cf.state.requests)) == before and time.monotonic() < logged:
            self.stop.wait(0.01)
        writes = len(_store_writes(cf.state.requests)) - before
        same = all(cf.versions_of(s) == n for s, n in versions.items())
        self.view.line()
        self.view.line(
            f"store      secret/{SHARED_PATH} → store secret {SHARED_SECRET}, bound by {', '.join(SCRIPTS)}: "
            f"{self.view.ok('✓')} {delay:.2f}s, {writes} Cloudflare write(s), "
            + ("no new Worker version" if same else "Worker versions changed")
        )
        return delay

    def initial_sync(self) -> None:
        deadline = time.monotonic() + ARRIVAL_TIMEOUT_SECONDS
        for secret in DEMO_SECRETS:
            current = self.vault.secrets.kv.v2.read_secret_version(path=secret.path, raise_on_deleted_version=True)
            values = current["data"]["data"]
            for key, lands in secret.lands.items():
                for script, binding in lands:
                    held = self.wait_arrival(script, binding, values[key], deadline)
                    mark = self.view.ok("✓") if held else self.view.bad("✗ (not yet)")
                    self.view.line(f"initial    {script}.{binding} {mark}")

    def enable_notifications(self, service: Service) -> None:
        """What an operator runs once: a file audit device, then a socket device towards syncd."""
        listener = service.audit_listener
        if listener is None:
            return
        self.vault.sys.enable_audit_device("file", path="file", options={"file_path": "discard"})
        self.vault.sys.enable_audit_device(
            "socket", path="syncd", options={"address": f"127.0.0.1:{listener.port}", "socket_type": "tcp"}
        )
        self.view.line()
        self.view.line("Vault now tells syncd about writes (socket audit device): no waiting for the next poll")

    def hand_edit(self, interval: float) -> float | None:
        """Someone overwrites a binding syncd owns; syncd's drift check puts Vault's value back."""
        script, binding = "payments-worker", "WEBHOOK_SECRET"
        current = self.vault.secrets.kv.v2.read_secret_version(path="demo/payments", raise_on_deleted_version=True)
        expected = current["data"]["data"]["webhook_secret"]
        cf = self.stack.cloudflare
        edit = {
            "set": {binding: {"name": binding, "type": "secret_text", "text": f"hand-{secrets.token_hex(8)}"}},
            "author_email": "someone.else@example.com",
            "source": "dash",
        }
        url = f"{cf.url}/__devstack/accounts/{cf.account_id}/workers/scripts/{script}/hand-edit"
        httpx.post(url, json=edit, timeout=10).raise_for_status()
        started = time.monotonic()
        self.view.line()
        self.view.line(
            f"hand edit  {script}.{binding} overwritten in the dashboard by someone.else@example.com"
            f" (drift checks every {interval:g}s)"
        )
        deadline = started + ARRIVAL_TIMEOUT_SECONDS + interval
        if not self.wait_arrival(script, binding, expected, deadline):
            self.view.line(f"drift      {script}.{binding} {self.view.bad('✗ not corrected yet')}")
            return None
        delay = time.monotonic() - started
        self.view.line(
            f"drift      {script}.{binding} detected and Vault's value put back {self.view.ok('✓')} {delay:.2f}s"
            f" (Worker version v{cf.versions_of(script)})"
        )
        return delay

    def rotate(self, secret: DemoSecret, number: int) -> list[float]:
        view = self.view
        values = secret.fresh_values()
        written = self.vault.secrets.kv.v2.create_or_update_secret(path=secret.path, secret=values)
        started = time.monotonic()
        deadline = started + ARRIVAL_TIMEOUT_SECONDS
        delays: list[float] = []
        parts = []
        for key, lands in secret.lands.items():
            for script, binding in lands:
                if not self.wait_arrival(script, binding, values[key], deadline):
                    parts.append(view.bad(f"{script}.{binding} ✗"))
                    continue
                delays.append(time.monotonic() - started)
                parts.append(f"{script}.{binding} {view.ok('✓')} {delays[-1]:.2f}s")
        versions = ", ".join(f"{s} v{self.stack.cloudflare.versions_of(s)}" for s in SCRIPTS)
        view.line(f"rotation {number:>2}  secret/{secret.path} → v{written['data']['version']}: " + "  ".join(parts))
        view.line(view.dim(f"             Worker versions now: {versions}"))
        if "api_key" in values:
            self.show_worker(values["api_key"], deadline)
        return delays


def _summary(view: LiveView, polled: list[float], notified: list[float]) -> None:
    view.line()
    for label, delays in (("by polling", polled), ("by Vault notification", notified)):
        if delays:
            view.line(
                f"{len(delays)} bindings arrived {label} · median {statistics.median(delays):.2f}s"
                f" · max {max(delays):.2f}s (from the Vault write to the Worker holding the value)"
            )


def _header(view: LiveView, stack: Devstack, files: str) -> None:
    view.line(f"syncd demo · Vault {stack.vault.url} · Cloudflare {stack.cloudflare.api_base}")
    view.line(view.dim(files))
    if stack.workers is not None:
        view.line(f"Workers run in workerd; ask one yourself: curl -s {stack.workers.url}/{WATCHED[0]}/")
    else:
        view.line(view.dim(f"no Workers runtime ({stack.workers_note}): showing the emulator's record only"))
    view.line()


def run_demo(
    out: TextIO, *, rotations: int = 3, interval: float = 5.0, wait: bool = True, workdir: Path | None = None
) -> int:
    """The config and log stay in ``workdir`` (a new temporary directory by default) after the demo,
    for the operator to read; the config's tokens are the devstack's and die with it."""
    view = LiveView(out)
    stop = threading.Event()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    log_path = workdir / "syncd.log"
    log_stream = log_path.open("w", encoding="utf-8")
    configure_logging(format="json", level="info", stream=log_stream)
    stack = Devstack(scripts=(*SCRIPTS, demo_composed.SCRIPT), workers="auto", db_roles=[demo_composed.ROLE_SPEC])
    service: Service | None = None
    try:
        stack.wait_until_ready()
        vault = hvac.Client(url=stack.vault.url, token=stack.vault.root_token, timeout=10)
        run = _DemoRun(view, stack, vault, stop)
        run.seed()
        composed = demo_composed.start(view, vault, lambda: run.held(demo_composed.SCRIPT, "DATABASE_URL"), stop)
        config_path = workdir / "syncd.toml"
        config_path.write_text(demo_config(stack, workdir, interval), encoding="utf-8")
        service = build_service(load_config(config_path), config_path)
        service.start()
        server = service.server
        base = getattr(server, "url", "(no server)")
        _header(view, stack, f"config {config_path} · logs {log_path} · polling every {interval:g}s")
        run.initial_sync()
        composed.initial(ARRIVAL_TIMEOUT_SECONDS)
        polled: list[float] = []
        notified: list[float] = []
        for number in range(1, rotations + 1):
            if number == 2:
                run.enable_notifications(service)
            for secret in DEMO_SECRETS:
                (polled if number == 1 else notified).extend(run.rotate(secret, number))
        run.hand_edit(interval)
        run.rotate_shared()
        composed.rounds(ARRIVAL_TIMEOUT_SECONDS)
        _summary(view, polled, notified)
        if wait:  # with --no-wait the service stops right below: its URLs would be dead
            view.line(f"metrics: {base}/metrics   status: {base}/status")
            view.line(view.dim("running; press Ctrl-C to stop"))
            while not stop.wait(3600):
                pass
    except KeyboardInterrupt:
        view.line()
        view.line("stopping")
    finally:
        stop.set()
        if service is not None:
            service.shutdown()
        stack.stop()
        log_stream.close()
    view.line(view.dim(f"stopped; config and log kept in {workdir}"))
    return 0


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    import argparse  # noqa: PLC0415 - keeps import time of the daemon's CLI unaffected

    parser = argparse.ArgumentParser(
        prog="syncd demo", description="Watch Vault rotations reach emulated Cloudflare Workers, live."
    )
    parser.add_argument("--rotations", type=int, default=3, help="rounds of rotations (default 3)")
    parser.add_argument("--interval", type=float, default=5.0, help="polling interval in seconds (default 5)")
    parser.add_argument("--no-wait", action="store_true", help="exit after the rotations instead of waiting")
    args: Any = parser.parse_args(argv)
    return run_demo(out or sys.stdout, rotations=args.rotations, interval=args.interval, wait=not args.no_wait)
