"""How fast a Vault rotation reaches its Worker, and what it costs, per way of noticing it.

```
python bench/propagation.py [--rotations 20] [--slow-rotations 3] [--repeat 1] [--secrets 100]
                            [--modes audit audit-spaced poll-1s poll-30s] [--no-worker] [--json]
```

The devstack runs in one subprocess and ``syncd run`` (the real command: scheduler, HTTP server,
state file, audit listener) in another, so ``syncd CPU`` is syncd's alone (``/proc/<pid>/stat``
over the series of rotations; idle time between rotations included, as that is when polling
works). For each mode, side by side in one run:

- ``audit``: Vault's socket audit device connected to syncd with the default settings
  (leading edge: every write starts a reconcile at once; backstop mode for the sweep);
- ``audit-spaced``: the same with ``[notifications] debounce_seconds = 0.2`` (at most one
  reconcile per 0.2 s per source: the latency cost of bounding bursts that way);
- ``poll-1s``: no notifications, ``interval_seconds = 1``, ``jitter_seconds = 0``;
- ``poll-30s``: no notifications, the defaults (30 s plus up to 3 s jitter); ``--slow-rotations``
  of them, as each takes ~17 s on average.

The world: ``--secrets`` KV v2 secrets ``secret/bench/pNNNNN`` (one key), one mapping each, over
``ceil(secrets / 50)`` Worker scripts. One rotation: a new value for ``secret/bench/p00000`` (plain
``http.client`` write), then wait until its Worker holds that value. ``write -> Worker`` is from
the moment the write is sent to the moment the Cloudflare emulator logged the ``secrets-bulk``
call that carried it (its request log's wall clock, same machine), so the benchmark's own polling
interval does not count. Values are never printed. Rotations are sequential: the next write is
sent once the previous value arrived, after a random pause within the mode's period (the polling
interval, the debounce spacing; none for the default audit mode), so writes land at random phases
of the poll instead of always just after one.

A second end point, at the Worker itself: when workerd is installed the devstack runs the deployed
Workers (``syncd.devstack.workers``), and ``write -> Worker answers`` is from the write to the first
answer of the script's default Worker (polled every 10 ms on the Workers address, after the
emulator's record has the value) that carries the new value's SHA-256 fingerprint. It adds the
runtime's reload (debounce 50 ms, then a new workerd process for two scripts) to the first end
point. ``--no-worker`` (or no workerd) leaves it out and runs the devstack without the runtime.

Exit status 1 when a rotation did not arrive within its deadline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``syncd`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import REPO_ROOT, Admin, DevstackProcess, Endpoints, Http, new_value
from syncd.devstack.workers.tools import find_workerd

BINDINGS_PER_SCRIPT = 50
ROTATED = "bench/p00000"
POLL_SECONDS = 0.01
START_TIMEOUT_SECONDS = 60.0

MODES: dict[str, dict[str, Any]] = {
    "audit": {"label": "audit device, defaults (leading edge)", "audit": True, "sync": {}, "phase": 0.0},
    "audit-spaced": {
        "label": "audit device, debounce_seconds = 0.2",
        "audit": True,
        "sync": {},
        "notifications": {"debounce_seconds": 0.2},
        "phase": 0.2,
    },
    "poll-1s": {
        "label": "polling every 1 s",
        "audit": False,
        "sync": {"interval_seconds": 1, "jitter_seconds": 0},
        "phase": 1.0,
    },
    "poll-30s": {"label": "polling every 30 s (default)", "audit": False, "sync": {}, "slow": True, "phase": 30.0},
}


@dataclass
class Series:
    mode: str
    label: str
    rotations: int
    latencies: list[float] = field(default_factory=list)
    worker_latencies: list[float] = field(default_factory=list)  # to the Worker's own answer
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    lost: int = 0

    def quantile(self, q: float, *, at_worker: bool = False) -> float | None:
        latencies = self.worker_latencies if at_worker else self.latencies
        if not latencies:
            return None
        ordered = sorted(latencies)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def script_of(index: int) -> str:
    return f"bench-w{index // BINDINGS_PER_SCRIPT:03d}"


def config_for(endpoints: Endpoints, workdir: Path, secrets: int, mode: dict[str, Any], ports: tuple[int, int]) -> str:
    http_port, audit_port = ports
    sync = "\n".join(f"{key} = {value}" for key, value in mode["sync"].items())
    notifications = ""
    if mode["audit"]:
        extra = "\n".join(f"{key} = {value}" for key, value in mode.get("notifications", {}).items())
        notifications = f'[notifications]\naudit_listen = "127.0.0.1:{audit_port}"\n{extra}\n'
    mappings = "".join(
        f'[[mapping]]\nname = "p{n:05d}"\nvault = {{ mount = "secret", path = "bench/p{n:05d}", kv_version = 2 }}\n'
        f'target = {{ script = "{script_of(n)}" }}\nsecret_text = {{ keys = {{ value = "P{n:05d}" }} }}\n'
        for n in range(secrets)
    )
    return f"""
[vault]
address = "{endpoints.vault_addr}"
allow_inline_credentials = true
[vault.auth]
method = "token"
token = {{ value = "{endpoints.vault_token}" }}
[cloudflare]
api_base = "{endpoints.cloudflare_api_base}"
account_id = "{endpoints.cloudflare_account_id}"
allow_inline_credentials = true
[cloudflare.auth]
api_token = {{ value = "{endpoints.cloudflare_api_token}" }}
[sync]
state_path = "{workdir / "state.sqlite3"}"
{sync}
[server]
bind = "127.0.0.1"
port = {http_port}
[logging]
format = "json"
level = "warning"
{notifications}
{mappings}"""


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Syncd:
    """``python -m syncd run`` in a subprocess, its ops endpoints on ``http_port``."""

    def __init__(self, config: Path, http_port: int) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self._log = (config.parent / "syncd.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
        )
        self.ops = Http(f"http://127.0.0.1:{http_port}", timeout=10)

    def status(self) -> dict[str, Any] | None:
        try:
            code, body = self.ops.request("GET", "/status")
        except OSError:
            return None
        return body if code == 200 and isinstance(body, dict) else None

    def ready(self) -> bool:
        try:
            return self.ops.request("GET", "/readyz")[0] == 200
        except OSError:
            return False

    def cpu(self) -> float:
        return process_cpu(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        pause.wait(0.02)


def swept_in_backstop(syncd: Syncd) -> bool:
    body = syncd.status()
    if body is None:
        return False
    mode, last = body.get("sync_mode") or {}, body.get("last_cycle")
    return (
        mode.get("mode") == "backstop"
        and last is not None
        and last["trigger"] == "interval"
        and last["started_at"] >= mode["since"]
    )


def arrival_time(admin: Admin, script: str, sent_at: float) -> float | None:
    """Wall-clock time of the first secrets-bulk call to ``script`` the emulator logged after ``sent_at``."""
    logged = admin.cloudflare.ok("GET", "/__devstack/requests")["requests"]
    times = [
        float(r["time"])
        for r in logged
        if r["method"] == "PATCH" and r["path"].endswith(f"/scripts/{script}/secrets-bulk") and r["time"] >= sent_at
    ]
    return min(times) if times else None


def worker_answered(worker: Http, script: str, value: str, deadline: float) -> float | None:
    """Wall-clock time of the first answer of ``script``'s Worker carrying ``value``'s fingerprint."""
    expected = hashlib.sha256(value.encode()).hexdigest()
    pause = threading.Event()  # never set
    while time.monotonic() <= deadline:
        try:
            code, body = worker.request("GET", f"/{script}/")
        except OSError:
            code, body = 0, None  # the runtime is between two workerd processes
        fingerprint = body.get("bindings", {}).get("P00000", {}).get("sha256") if isinstance(body, dict) else None
        if code == 200 and fingerprint == expected:
            return time.time()
        pause.wait(POLL_SECONDS)
    return None


def run_series(admin: Admin, syncd: Syncd, key: str, rotations: int, timeout: float) -> Series:
    mode = MODES[key]
    series = Series(key, str(mode["label"]), rotations)
    script = script_of(0)
    account = admin.endpoints.cloudflare_account_id
    pause = threading.Event()  # never set
    phases = random.Random(rotations)  # a reproducible spread of start times
    workers_url = admin.endpoints.workers_url
    worker = Http(workers_url, timeout=10) if workers_url else None
    cpu_before, wall_before = syncd.cpu(), time.monotonic()
    for n in range(rotations):
        # A random moment within the mode's period, so a write does not always land just after a
        # poll (or a delivery) because the previous one just arrived.
        pause.wait(phases.uniform(0.0, float(mode["phase"])))
        value = new_value(f"rot{n}")
        admin.clear_requests()
        sent_at = time.time()
        admin.vault.ok("POST", f"/v1/secret/data/{ROTATED}", {"data": {"value": value}})
        deadline = time.monotonic() + timeout
        while True:
            held = admin.cloudflare.ok("GET", f"/__devstack/accounts/{account}/workers/scripts/{script}")["secrets"]
            if held.get("P00000", {}).get("text") == value:
                break
            if time.monotonic() > deadline:
                series.lost += 1
                break
            pause.wait(POLL_SECONDS)  # polls the emulator, not syncd: the arrival time comes from its log
        arrived = arrival_time(admin, script, sent_at) if time.monotonic() <= deadline else None
        if arrived is not None:
            series.latencies.append(max(0.0, arrived - sent_at))
        if worker is not None:
            answered = worker_answered(worker, script, value, deadline)
            if answered is None:
                series.lost += 1
            else:
                series.worker_latencies.append(max(0.0, answered - sent_at))
    series.cpu_seconds = syncd.cpu() - cpu_before
    series.wall_seconds = time.monotonic() - wall_before
    return series


def run_mode(endpoints: Endpoints, admin: Admin, key: str, secrets: int, rotations: int) -> Series:
    mode = MODES[key]
    http_port, audit_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix=f"syncd-bench-{key}-") as tmp:
        workdir = Path(tmp)
        config = workdir / "syncd.toml"
        config.write_text(config_for(endpoints, workdir, secrets, mode, (http_port, audit_port)))
        syncd = Syncd(config, http_port)
        try:
            wait_for(syncd.ready, START_TIMEOUT_SECONDS, "syncd did not become ready")
            if mode["audit"]:
                admin.vault.ok(
                    "POST",
                    "/v1/sys/audit/syncd",
                    {"type": "socket", "options": {"address": f"127.0.0.1:{audit_port}", "socket_type": "tcp"}},
                )
                wait_for(lambda: swept_in_backstop(syncd), START_TIMEOUT_SECONDS, "the audit device did not connect")
            interval = float(mode["sync"].get("interval_seconds", 30))
            return run_series(admin, syncd, key, rotations, timeout=2 * interval + 30)
        finally:
            if mode["audit"]:
                admin.vault.request("DELETE", "/v1/sys/audit/syncd")
            syncd.stop()


def seed(admin: Admin, secrets: int) -> None:
    admin.create_scripts(sorted({script_of(n) for n in range(secrets)}))
    admin.write_secrets({f"bench/p{n:05d}": new_value("seed") for n in range(secrets)})
    admin.vault.ok("POST", "/v1/sys/audit/file", {"type": "file", "options": {"file_path": "discard"}})


def median_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(runs: list[list[Series]]) -> list[dict[str, Any]]:
    """Per mode, the median over repetitions of p50, p99 and CPU."""
    rows = []
    for index, first in enumerate(runs[0]):
        same = [run[index] for run in runs]
        rows.append(
            {
                "mode": first.mode,
                "label": first.label,
                "rotations": first.rotations,
                "p50": median_of([s.quantile(0.5) for s in same]),
                "p99": median_of([s.quantile(0.99) for s in same]),
                "worker_p50": median_of([s.quantile(0.5, at_worker=True) for s in same]),
                "worker_p99": median_of([s.quantile(0.99, at_worker=True) for s in same]),
                "cpu_seconds": median_of([s.cpu_seconds for s in same]),
                "wall_seconds": median_of([s.wall_seconds for s in same]),
                "lost": sum(s.lost for s in same),
            }
        )
    return rows


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def format_table(rows: list[dict[str, Any]], repeat: int, secrets: int) -> str:
    lines = [
        f"{secrets} secrets, sequential rotations of one; medians over {repeat} repetition(s)",
        "",
        "| mode | rotations | p50 write -> Worker (emulator's record) | p99 | p50 write -> Worker answers"
        " (workerd) | p99 | syncd CPU over the series | wall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['label']} | {row['rotations']} | {_duration(row['p50'])} | {_duration(row['p99'])}"
            f" | {_duration(row['worker_p50'])} | {_duration(row['worker_p99'])}"
            f" | {row['cpu_seconds']:.2f} s | {row['wall_seconds']:.1f} s |"
        )
    lost = sum(row["lost"] for row in rows)
    lines.append("")
    lines.append(f"rotations that did not arrive: {lost}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rotations", type=int, default=20, help="rotations per fast mode (default 20)")
    parser.add_argument("--slow-rotations", type=int, default=3, help="rotations for polling every 30 s (default 3)")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions of the whole comparison (default 1)")
    parser.add_argument("--secrets", type=int, default=100, help="mapped secrets (default 100)")
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=list(MODES))
    parser.add_argument("--no-worker", action="store_true", help="no end point at the Worker (no workerd)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    at_worker = not args.no_worker and find_workerd() is not None
    if not args.no_worker and not at_worker:
        print("propagation: workerd not found, measuring to the emulator's record only", file=sys.stderr)
    with DevstackProcess(workers=at_worker) as devstack:
        assert devstack.endpoints is not None
        admin = Admin(devstack.endpoints)
        seed(admin, args.secrets)
        runs = []
        for _ in range(args.repeat):
            runs.append(
                [
                    run_mode(
                        devstack.endpoints,
                        admin,
                        key,
                        args.secrets,
                        args.slow_rotations if MODES[key].get("slow") else args.rotations,
                    )
                    for key in args.modes
                ]
            )
    rows = summarize(runs)
    if args.json:
        detail = [[asdict(series) for series in run] for run in runs]
        print(json.dumps({"machine_cpus": os.cpu_count(), "rows": rows, "runs": detail}))
    else:
        print(format_table(rows, args.repeat, args.secrets))
    return 1 if any(row["lost"] for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
