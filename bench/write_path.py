"""The Cloudflare write path at production latency: fan-out, isolation, initial sync.

```
python bench/write_path.py [fanout] [isolation] [initial-sync] [--scripts 1000] [--latency 1.0]
                           [--concurrency 8] [--rate-limit 600] [--rate-window 30]
                           [--isolation-scripts 5] [--slow 1] [--failing 1] [--cycle-timeout 10]
                           [--paths 10000]
```

Every scenario starts the devstack in a subprocess (``bench._stack``); write latency and faults come
from the Cloudflare emulator's fault injection (``/__devstack/faults``: ``latency`` on
``PATCH .../secrets-bulk``). Each prints its figures beside the floor it is compared to, measured in
the same run. Exit status 1 when a target below was missed.

- **fanout**: one secret mapped to ``--scripts`` scripts, rotated once, every write answering after
  ``--latency`` seconds, the account limit scaled to ``--rate-limit`` requests per
  ``--rate-window`` seconds (emulator and syncd alike). Floor = max(rate floor, latency floor):
  latency floor = ceil(scripts / concurrency) x latency; rate floor = the time the pacer's sliding
  window (syncd's budget: 90 % of the limit) lets the last write start, plus its latency; the floor
  is the earliest finish with both constraints at once (which can exceed either alone). Target:
  wall <= 1.1 x floor, 0 x 429.
- **isolation**: ``--isolation-scripts`` scripts, each with its own secret, all rotated; ``--slow``
  of them hang past the client timeout, ``--failing`` answer 503. Beside it the same rotation with
  no faulty script. Target: the healthy scripts converge in the same cycle, and the cycle ends no
  later than 1 s after its deadline.
- **initial-sync**: ``syncd run`` (a subprocess, default settings) over ``--paths`` distinct secrets
  on 100 scripts, from an empty state: wall time to the end of the start-up cycle, the start-up
  cycle's own duration and the time after its last write, Vault metadata reads (exactly one per
  secret), and RSS after convergence. Targets: < 30 s, == paths, < 100 MiB.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/write_path.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import REPO_ROOT, Admin, DevstackProcess, Endpoints, new_value
from bench.workload import Workload, config_toml
from syncd.app.service.logs import configure_logging
from syncd.app.service.metrics import Metrics
from syncd.app.service.wiring import build_clients, build_reconciler, open_state
from syncd.config import Settings, parse_config
from syncd.engine.report import CycleReport

PACER_HEADROOM = 0.9  # syncd's Pacer default: 90 % of the account limit
MIB = 1024 * 1024


# -- shared ----------------------------------------------------------------------------------------


def _config(
    endpoints: Endpoints, state: Path, mappings: list[str], *, cycle_timeout: float = 120.0, **cloudflare: Any
) -> str:
    extra = [f"{key} = {json.dumps(value)}" for key, value in cloudflare.items()]
    return "\n".join(
        [
            "[vault]",
            f'address = "{endpoints.vault_addr}"',
            "allow_inline_credentials = true",
            "[vault.auth]",
            'method = "token"',
            f'token = {{ value = "{endpoints.vault_token}" }}',
            "[cloudflare]",
            f'api_base = "{endpoints.cloudflare_api_base}"',
            f'account_id = "{endpoints.cloudflare_account_id}"',
            "allow_inline_credentials = true",
            *extra,
            "[cloudflare.auth]",
            f'api_token = {{ value = "{endpoints.cloudflare_api_token}" }}',
            "[sync]",
            f'state_path = "{state}"',
            f"cycle_timeout_seconds = {cycle_timeout}",
            "[server]",
            "enabled = false",
            *mappings,
        ]
    )


def _mapping(name: str, path: str, script: str, binding: str) -> str:
    return (
        f'[[mapping]]\nname = "{name}"\nvault = {{ mount = "secret", path = "{path}", kv_version = 2 }}\n'
        f'target = {{ script = "{script}" }}\nsecret_text = {{ keys = {{ value = "{binding}" }} }}'
    )


class Syncd:
    """syncd built in this process exactly as ``syncd run`` builds it (``syncd.app.service.wiring``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clients = build_clients(settings, Metrics())
        self.clients.tokens.ensure_token()
        self.state = open_state(settings)
        self.reconciler = build_reconciler(settings, self.clients, self.state)

    def cycle(self) -> CycleReport:
        deadline = time.time() + self.settings.sync.cycle_timeout_seconds
        return self.reconciler.reconcile(deadline=deadline)

    def close(self) -> None:
        self.clients.close()
        self.state.close()


def _endpoints(devstack: DevstackProcess) -> Endpoints:
    assert devstack.endpoints is not None  # started by the with statement
    return devstack.endpoints


def _fault(admin: Admin, script: str, **how: Any) -> None:
    admin.cloudflare.ok(
        "POST", "/__devstack/faults", {"method": "PATCH", "path": f"*/scripts/{script}/secrets-bulk", **how}
    )


def _statuses(admin: Admin) -> list[int]:
    return [status for _, path, status in admin.requests("cloudflare") if not path.startswith("/__devstack")]


# -- fan-out ---------------------------------------------------------------------------------------


def _combined_floor(n: int, concurrency: int, latency: float, budget: int, window: float) -> float:
    """The earliest any client could finish: ``concurrency`` writers of ``latency`` seconds each, and
    at most ``budget`` starts in any ``window`` seconds (each write starts as early as both allow)."""
    writers = [0.0] * concurrency  # when each writer is free
    starts: list[float] = []
    for i in range(n):
        writer = min(range(concurrency), key=writers.__getitem__)
        start = writers[writer]
        if i >= budget:
            start = max(start, starts[i - budget] + window)
        starts.append(start)
        writers[writer] = start + latency
    return max(writers)



def fanout(args: argparse.Namespace, workdir: Path) -> list[str]:
    n, latency, conc = args.scripts, args.latency, args.concurrency
    scripts = [f"fan-{i:05d}" for i in range(n)]
    with DevstackProcess() as devstack:
        admin = Admin(_endpoints(devstack))
        admin.create_scripts(scripts)
        admin.write_secrets({"bench/fan": new_value("fan")})
        mappings = [_mapping(s, "bench/fan", s, "FAN") for s in scripts]
        state = workdir / "fanout.sqlite3"
        # The initial sync (a list and a write per script) with no latency and no tight limit.
        admin.set_cloudflare_rate_limit(100_000, 300.0)
        setup = Syncd(parse_config(_config(admin.endpoints, state, mappings, rate_limit_requests=100_000), "fan"))
        try:
            if not setup.cycle().ok:
                return ["fanout: the initial sync failed"]
        finally:
            setup.close()

        admin.set_cloudflare_rate_limit(args.rate_limit, args.rate_window)
        config = _config(
            admin.endpoints,
            state,
            mappings,
            rate_limit_requests=args.rate_limit,
            rate_limit_window_seconds=args.rate_window,
            write_concurrency=conc,
            cycle_timeout=3600,
        )
        syncd = Syncd(parse_config(config, "fan"))
        try:
            admin.write_secrets({"bench/fan": new_value("fan")})
            _fault(admin, "fan-*", latency=latency, count=n)
            admin.clear_requests()
            started = time.time()
            report = syncd.cycle()
            last_write = max((p.confirmed_at or 0.0) for p in report.pushes) if report.pushes else started
        finally:
            syncd.close()
        statuses = _statuses(admin)
    budget = max(1, math.floor(args.rate_limit * PACER_HEADROOM))
    latency_floor = math.ceil(n / conc) * latency
    rate_floor = ((n - 1) // budget) * args.rate_window + latency
    floor = max(latency_floor, rate_floor, _combined_floor(n, conc, latency, budget, args.rate_window))
    wall = last_write - started
    ratio = wall / floor
    too_many = statuses.count(429)
    print(f"== fan-out: 1 secret -> {n} scripts, {latency:g} s per write, write_concurrency {conc} ==")
    print(f"rate limit {args.rate_limit}/{args.rate_window:g}s (pacer budget {budget})")
    print(f"  rotation to last write confirmed: {wall:8.2f} s   cycle: {report.finished_at - report.started_at:.2f} s")
    print(f"  latency floor ceil({n}/{conc}) x {latency:g} s: {latency_floor:8.2f} s")
    print(f"  rate floor:                      {rate_floor:8.2f} s")
    print(f"  both at once (the floor):        {floor:8.2f} s")
    print(f"  ratio to floor: {ratio:.3f}x (target <= 1.1x)   writes: {statuses.count(200)} ok, 429s: {too_many}")
    print(f"  serial (before): ~{n * latency:.0f} s")
    problems = []
    if not report.ok:
        problems.append(f"fanout: {sum(r.failed for r in report.results)} mappings failed")
    if ratio > 1.1:
        problems.append(f"fanout: {ratio:.2f}x the floor")
    if too_many:
        problems.append(f"fanout: {too_many} x 429")
    return problems


# -- isolation -------------------------------------------------------------------------------------


def _isolation_run(admin: Admin, workdir: Path, args: argparse.Namespace, faulty: bool, tag: str) -> dict[str, Any]:
    n = args.isolation_scripts
    scripts = [f"iso-{tag}-{i:03d}" for i in range(n)]
    slow = scripts[n - args.slow - args.failing : n - args.failing] if faulty else []
    failing = scripts[n - args.failing :] if faulty else []
    admin.create_scripts(scripts)
    admin.write_secrets({f"bench/{s}": new_value(s) for s in scripts})
    mappings = [_mapping(s, f"bench/{s}", s, "KEY") for s in scripts]
    config = _config(admin.endpoints, workdir / f"iso-{tag}.sqlite3", mappings, cycle_timeout=args.cycle_timeout)
    syncd = Syncd(parse_config(config, tag))
    try:
        if not syncd.cycle().ok:
            raise RuntimeError("isolation: the initial sync failed")
        admin.write_secrets({f"bench/{s}": new_value(s) for s in scripts})
        for script in slow:
            _fault(admin, script, latency=120.0, count=100)  # hangs past the 15 s client timeout
        for script in failing:
            _fault(admin, script, status=503, count=100)
        started = time.time()
        deadline = started + args.cycle_timeout
        report = syncd.reconciler.reconcile(deadline=deadline)
        healthy = set(scripts) - set(slow) - set(failing)
        healthy_pushes = [p for p in report.pushes if p.target.script in healthy and p.outcome == "ok"]
        converged = {p.target.script for p in healthy_pushes} == healthy
        second_started = time.time()
        second = syncd.reconciler.reconcile(deadline=second_started + args.cycle_timeout)
        return {
            "healthy": len(healthy),
            "faulty": len(slow) + len(failing),
            "converged_same_cycle": converged,
            "healthy_converged_s": max((p.confirmed_at or 0.0) for p in healthy_pushes) - started
            if healthy_pushes
            else math.nan,
            "cycle_s": report.finished_at - report.started_at,
            "past_deadline_s": report.finished_at - deadline,
            "second_cycle_s": second.finished_at - second.started_at,
            "second_backed_off": sum(r.error_code == "ScriptBackedOff" for r in second.results),
        }
    finally:
        syncd.close()


def isolation(args: argparse.Namespace, workdir: Path) -> list[str]:
    with DevstackProcess() as devstack:
        admin = Admin(_endpoints(devstack))
        clean = _isolation_run(admin, workdir, args, faulty=False, tag="clean")
        faulty = _isolation_run(admin, workdir, args, faulty=True, tag="faulty")
    print(
        f"== isolation: {args.isolation_scripts} scripts, {args.slow} hanging + {args.failing} answering 503,"
        f" cycle timeout {args.cycle_timeout:g} s =="
    )
    print(
        f"  {'run':<22}{'healthy converged':>18}{'same cycle':>12}{'cycle':>9}"
        f"{'past deadline':>15}{'next cycle':>12}"
    )
    for name, run in (("no faulty script", clean), ("with faulty scripts", faulty)):
        print(
            f"  {name:<22}{run['healthy_converged_s']:>16.3f} s{run['converged_same_cycle']!s:>12}"
            f"{run['cycle_s']:>7.2f} s{run['past_deadline_s']:>13.2f} s{run['second_cycle_s']:>10.2f} s"
        )
    print(f"  next cycle with faulty scripts: {faulty['second_backed_off']} mappings reported ScriptBackedOff")
    problems = []
    if not faulty["converged_same_cycle"]:
        problems.append("isolation: the healthy scripts did not converge in the same cycle")
    if faulty["past_deadline_s"] > 1.0:
        problems.append(f"isolation: the cycle ended {faulty['past_deadline_s']:.2f} s past its deadline")
    return problems


# -- initial sync ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return bool(response.status == 200)
    except OSError:  # not listening yet, or 503
        return False


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / MIB
    return math.nan


def initial_sync(args: argparse.Namespace, workdir: Path) -> list[str]:
    workload = Workload(args.paths)
    with DevstackProcess() as devstack:
        admin = Admin(_endpoints(devstack))
        admin.create_scripts(workload.scripts)
        admin.write_secrets({workload.path(i): new_value(str(i)) for i in range(workload.paths)})
        port = _free_port()
        text = config_toml(workload, admin.endpoints, concurrency=8, state_path=workdir / "initial.sqlite3")
        # Defaults, except an interval long enough that no second cycle runs while we measure the first.
        text = text.replace(
            "cycle_timeout_seconds = 1800", "interval_seconds = 3600\nbackstop_interval_seconds = 3600"
        ).replace(
            "[server]\nenabled = false", f'[server]\nenabled = true\nbind = "127.0.0.1"\nport = {port}'
        )
        config = workdir / "initial.toml"
        config.write_text(text + '\n[logging]\nformat = "json"\n')
        admin.clear_requests()
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        started = time.time()
        errors = (workdir / "initial.stderr").open("w")
        command = [sys.executable, "-m", "syncd", "run", "--config", str(config)]
        if args.profile:  # collapsed stacks of the whole run (py-spy from PyPI, not a dependency)
            command = ["py-spy", "record", "--format", "raw", "--rate", "50", "-o", args.profile, "--", *command]
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=env,
            cwd=REPO_ROOT,
        )
        try:
            last: Any = None
            while time.time() - started < 600 and process.poll() is None:
                # /readyz (cheap) turns 200 once the start-up cycle has finished; /status (10,000
                # mappings of JSON) is asked once, after.
                if _ready(f"http://127.0.0.1:{port}/readyz"):
                    last = _get_json(f"http://127.0.0.1:{port}/status")["last_cycle"]
                    break
                time.sleep(0.2)
            ended = time.time()
            rss = _rss_mib(process.pid)
            vault = admin.requests("vault")
            cloudflare = admin.requests("cloudflare")
        finally:
            process.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)  # py-spy saves on SIGINT
            process.wait(timeout=60)
        last_patch = max((t for m, _, _, t in admin.timed_requests("cloudflare") if m == "PATCH"), default=math.nan)
    errors.close()
    if last is None:
        tail = (workdir / "initial.stderr").read_text()[-2000:]
        return [f"initial-sync: the start-up cycle did not finish (syncd run stderr: {tail!r})"]
    metadata = sum(1 for method, path, _ in vault if method == "GET" and path.startswith("/v1/secret/metadata/"))
    patches = sum(1 for method, _, _ in cloudflare if method == "PATCH")
    cycle = last["finished_at"] - last["started_at"]
    print(f"== initial sync: `syncd run`, {workload.paths} secrets over {workload.script_count} scripts ==")
    print(f"  process start to start-up cycle end: {ended - started:7.2f} s (target < 30 s; polled every 0.2 s)")
    after = last["finished_at"] - last_patch
    print(f"  start-up cycle: {cycle:.2f} s, ok={last['ok']}, {patches} PATCH secrets-bulk")
    print(f"  from the last write to the end of the cycle: {after:.2f} s ({after / cycle:.1%} of the cycle)")
    print(f"  Vault metadata reads: {metadata} (target exactly {workload.paths})")
    print(f"  RSS after convergence: {rss:.0f} MiB (target < 100 MiB)")
    problems = []
    if ended - started >= 30:
        problems.append(f"initial-sync: {ended - started:.1f} s")
    if metadata != workload.paths:
        problems.append(f"initial-sync: {metadata} metadata reads")
    if rss >= 100:
        problems.append(f"initial-sync: RSS {rss:.0f} MiB")
    if not last["ok"]:
        problems.append("initial-sync: the start-up cycle failed")
    if after > 0.05 * cycle:
        problems.append(f"initial-sync: {after:.1f} s after the last write")
    return problems


# -- main ------------------------------------------------------------------------------------------

SCENARIOS = {"fanout": fanout, "isolation": isolation, "initial-sync": initial_sync}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", metavar="scenario", help=f"{', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--scripts", type=int, default=1000, help="fanout: scripts the secret is mapped to")
    parser.add_argument("--latency", type=float, default=1.0, help="fanout: seconds per write")
    parser.add_argument("--concurrency", type=int, default=8, help="fanout: cloudflare.write_concurrency")
    parser.add_argument("--rate-limit", type=int, default=600, help="fanout: account requests per window")
    parser.add_argument("--rate-window", type=float, default=30.0, help="fanout: the window, seconds")
    parser.add_argument("--isolation-scripts", type=int, default=5)
    parser.add_argument("--slow", type=int, default=1, help="isolation: scripts that hang")
    parser.add_argument("--failing", type=int, default=1, help="isolation: scripts answering 503")
    parser.add_argument("--cycle-timeout", type=float, default=10.0, help="isolation: sync.cycle_timeout_seconds")
    parser.add_argument("--paths", type=int, default=10_000, help="initial-sync: distinct secrets")
    parser.add_argument("--profile", metavar="FILE", help="initial-sync: run syncd under py-spy, stacks to FILE")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    chosen = args.scenarios or list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    problems: list[str] = []
    # syncd's logging as in production (JSON, info), so its cost is measured, but not on screen.
    with open(os.devnull, "w") as devnull, tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        configure_logging(format="json", level="info", stream=devnull)
        for name in chosen:
            problems += SCENARIOS[name](args, Path(tmp))
            print()
    print("problems: " + ("; ".join(problems) if problems else "none"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
