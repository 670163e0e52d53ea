"""Steady-state cost of syncd against the devstack, next to a raw-HTTP floor; Cloudflare calls per rotation.

```
python bench/steady_state.py [--paths 1000 10000] [--cycles 3] [--concurrency 8 16] [--json]
```

For each size N: seed N KV v2 secrets and ceil(N / 100) Worker scripts in a devstack running in a
subprocess, run syncd's initial sync, then per concurrency ``--cycles`` unchanged cycles, each
preceded by the floor (the same N metadata reads by a minimal client). The benchmark process runs
only the measured client during a measurement, so its ``process_time`` delta is that client's CPU.
Then rotations (R secrets over S scripts, one reconcile each). Call counts come from the
emulators' request logs, i.e. what went over the wire. See bench/README.md for what the numbers mean.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``syncd`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._floor import raw_metadata_reads, requests_metadata_reads
from bench._stack import Admin, DevstackProcess, new_value
from bench.workload import Workload, settings_for
from syncd.app.service.logs import configure_logging
from syncd.app.service.metrics import Metrics
from syncd.app.service.wiring import Clients, build_clients, build_reconciler, open_state
from syncd.engine.report import CycleReport, Trigger
from syncd.engine.state import StateBackend

DEFAULT_ROTATIONS = ((1, 1), (50, 5), (100, 1))
SYNCD = "syncd"
FLOOR_RAW = "floor http.client"
FLOOR_REQUESTS = "floor requests"


@dataclass
class Measurement:
    """One pass of N version checks by one client."""

    client: str
    concurrency: int
    cycle: int
    checks: int
    wall_seconds: float
    cpu_seconds: float
    vault_requests: int
    cloudflare_calls: int
    emulator_cpu_seconds: float | None

    @property
    def checks_per_second(self) -> float:
        return self.checks / self.wall_seconds if self.wall_seconds > 0 else float("inf")

    @property
    def cpu_us_per_check(self) -> float:
        return self.cpu_seconds / self.checks * 1e6


@dataclass
class InitialSync:
    wall_seconds: float
    cpu_seconds: float
    vault_requests: dict[str, int]
    cloudflare_calls: dict[str, int]
    pushes: int
    ok: bool


@dataclass
class Rotation:
    secrets: int
    scripts: int
    cloudflare_calls: dict[str, int]
    worker_versions_created: int
    vault_requests: dict[str, int]
    wall_seconds: float
    values_arrived: bool

    @property
    def calls(self) -> int:
        return sum(self.cloudflare_calls.values())

    @property
    def calls_per_rotation(self) -> float:
        return self.calls / self.secrets

    @property
    def calls_per_script(self) -> float:
        return self.calls / self.scripts


@dataclass
class SizeResult:
    paths: int
    scripts: int
    seed_seconds: float
    initial: InitialSync
    measurements: list[Measurement] = field(default_factory=list)
    rotations: list[Rotation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def best(self, client: str, concurrency: int) -> Measurement | None:
        """The fastest cycle (least disturbed by the machine) of one client at one concurrency."""
        runs = [m for m in self.measurements if m.client == client and m.concurrency == concurrency]
        return min(runs, key=lambda m: m.wall_seconds) if runs else None

    def median_cpu_us(self, client: str, concurrency: int) -> float | None:
        runs = sorted(
            m.cpu_us_per_check for m in self.measurements if m.client == client and m.concurrency == concurrency
        )
        return runs[len(runs) // 2] if runs else None


# -- measuring ------------------------------------------------------------------------------------------


def _kinds(requests: list[tuple[str, str, int]], kind: Callable[[str, str], str]) -> dict[str, int]:
    return dict(Counter(kind(method, path) for method, path, _ in requests))


def _vault_kind(method: str, path: str) -> str:
    if path.startswith("/v1/secret/metadata/"):
        return f"{method} metadata"
    if path.startswith("/v1/secret/data/"):
        return f"{method} data"
    return f"{method} {path}"


def _cloudflare_kind(method: str, path: str) -> str:
    return f"{method} {path.rsplit('/', 1)[-1]}"


class _Bench:
    def __init__(self, workload: Workload, devstack: DevstackProcess, admin: Admin, workdir: Path) -> None:
        self.workload = workload
        self.devstack = devstack
        self.admin = admin
        self.workdir = workdir
        self.state: StateBackend | None = None
        self.problems: list[str] = []

    def timed(self, action: Callable[[], Any]) -> tuple[Any, float, float, float | None]:
        """``action()``, its wall and CPU seconds (this process), and the emulators' CPU seconds."""
        emulator_before = self.devstack.cpu_seconds()
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        result = action()
        wall, cpu = time.perf_counter() - wall_before, time.process_time() - cpu_before
        emulator_after = self.devstack.cpu_seconds()
        emulator = None if emulator_before is None or emulator_after is None else emulator_after - emulator_before
        return result, wall, cpu, emulator

    def syncd(self, concurrency: int) -> tuple[Clients, Callable[[], CycleReport]]:
        settings = settings_for(
            self.workload, self.admin.endpoints, concurrency=concurrency, state_path=self.workdir / "state.sqlite3"
        )
        clients = build_clients(settings, Metrics())
        clients.tokens.ensure_token()
        if self.state is None:
            self.state = open_state(settings)
        reconciler = build_reconciler(settings, clients, self.state)

        def cycle() -> CycleReport:
            deadline = time.time() + settings.sync.cycle_timeout_seconds
            return reconciler.reconcile(trigger=Trigger.INTERVAL, deadline=deadline)

        return clients, cycle

    def initial_sync(self, concurrency: int) -> InitialSync:
        clients, cycle = self.syncd(concurrency)
        try:
            self.admin.clear_requests()
            report, wall, cpu, _ = self.timed(cycle)
        finally:
            clients.close()
        if not report.ok:
            self.problems.append(f"initial sync: {sum(r.failed for r in report.results)} mappings failed")
        return InitialSync(
            wall,
            cpu,
            _kinds(self.admin.requests("vault"), _vault_kind),
            _kinds(self.admin.requests("cloudflare"), _cloudflare_kind),
            len(report.pushes),
            report.ok,
        )

    def steady(self, concurrency: int, cycles: int) -> list[Measurement]:
        paths = [self.workload.path(i) for i in range(self.workload.paths)]
        endpoints = self.admin.endpoints
        floors: dict[str, Callable[[], dict[str, int]]] = {
            FLOOR_RAW: lambda: raw_metadata_reads(endpoints.vault_addr, endpoints.vault_token, paths, concurrency),
            FLOOR_REQUESTS: lambda: requests_metadata_reads(
                endpoints.vault_addr, endpoints.vault_token, paths, concurrency
            ),
        }
        measurements = []
        clients, cycle = self.syncd(concurrency)
        try:
            for number in range(1, cycles + 1):
                # Interleaved, so that drift of the machine's speed hits every client alike.
                for client, run in [*floors.items(), (SYNCD, cycle)]:
                    measurements.append(self.measure(client, concurrency, number, run))
        finally:
            clients.close()
        return measurements

    def measure(self, client: str, concurrency: int, number: int, run: Callable[[], Any]) -> Measurement:
        n = self.workload.paths
        self.admin.clear_requests()
        result, wall, cpu, emulator = self.timed(run)
        vault = self.admin.requests("vault")
        cloudflare = self.admin.requests("cloudflare")
        metadata_reads = sum(1 for m, p, s in vault if m == "GET" and p.startswith("/v1/secret/metadata/") and s == 200)
        where = f"{client} c={concurrency} cycle {number}"
        if len(vault) != n or metadata_reads != n:
            self.problems.append(f"{where}: {len(vault)} Vault requests ({metadata_reads} metadata reads), not {n}")
        if cloudflare:
            self.problems.append(f"{where}: {len(cloudflare)} Cloudflare calls in an unchanged world, not 0")
        if isinstance(result, CycleReport) and (not result.ok or result.pushes):
            self.problems.append(f"{where}: the cycle was not a clean no-op")
        if isinstance(result, dict) and len(result) != n:
            self.problems.append(f"{where}: {len(result)} versions read, not {n}")
        return Measurement(client, concurrency, number, n, wall, cpu, len(vault), len(cloudflare), emulator)

    def rotate(self, secrets: int, scripts: int, concurrency: int) -> Rotation | None:
        """Rotate ``secrets`` secrets spread evenly over the first ``scripts`` scripts; one reconcile."""
        per_script = -(-secrets // scripts)
        if scripts > self.workload.script_count or any(
            len(self.workload.paths_of_script(s)) < per_script for s in range(scripts)
        ):
            self.problems.append(f"rotation {secrets} over {scripts}: too few paths or scripts, skipped")
            return None
        chosen = [self.workload.paths_of_script(j % scripts)[j // scripts] for j in range(secrets)]
        values = {i: new_value("rotated") for i in chosen}
        self.admin.write_secrets({self.workload.path(i): v for i, v in values.items()})
        affected = sorted({self.workload.script_of(i) for i in chosen})
        before = {s: int(self.admin.worker(s)["versions"]) for s in affected}
        clients, cycle = self.syncd(concurrency)
        try:
            self.admin.clear_requests()
            report, wall, _, _ = self.timed(cycle)
        finally:
            clients.close()
        workers = {s: self.admin.worker(s) for s in affected}
        created = sum(int(workers[s]["versions"]) - before[s] for s in affected)
        arrived = all(
            workers[self.workload.script_of(i)]["secrets"].get(self.workload.binding(i), {}).get("text") == value
            for i, value in values.items()
        )
        rotation = Rotation(
            secrets,
            len(affected),
            _kinds(self.admin.requests("cloudflare"), _cloudflare_kind),
            created,
            _kinds(self.admin.requests("vault"), _vault_kind),
            wall,
            arrived and report.ok,
        )
        where = f"rotation of {secrets} secrets over {len(affected)} scripts"
        if rotation.calls != len(affected) or created != len(affected):
            self.problems.append(f"{where}: {rotation.calls} Cloudflare calls, {created} versions, not {len(affected)}")
        if not rotation.values_arrived:
            self.problems.append(f"{where}: not every new value arrived (or the cycle failed)")
        return rotation

    def close(self) -> None:
        if self.state is not None:
            self.state.close()


def run_size(
    paths: int,
    *,
    cycles: int = 3,
    concurrencies: Sequence[int] = (8,),
    bindings_per_script: int = 100,
    rotations: Sequence[tuple[int, int]] = DEFAULT_ROTATIONS,
    cloudflare_rate_limit: tuple[int, float] | None = None,
) -> SizeResult:
    """The whole benchmark at one size, in a fresh devstack subprocess and a fresh state."""
    workload = Workload(paths, bindings_per_script)
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp, DevstackProcess() as devstack:
        assert devstack.endpoints is not None
        admin = Admin(devstack.endpoints)
        if cloudflare_rate_limit is not None:
            admin.set_cloudflare_rate_limit(*cloudflare_rate_limit)
        bench = _Bench(workload, devstack, admin, Path(tmp))
        try:
            seed_started = time.perf_counter()
            admin.create_scripts(workload.scripts)
            admin.write_secrets({workload.path(i): new_value("seed") for i in range(paths)})
            seeded = time.perf_counter() - seed_started
            initial = bench.initial_sync(concurrencies[0])
            result = SizeResult(paths, workload.script_count, seeded, initial)
            for concurrency in concurrencies:
                result.measurements += bench.steady(concurrency, cycles)
            for secrets, scripts in rotations:
                rotation = bench.rotate(secrets, scripts, concurrencies[0])
                if rotation is not None:
                    result.rotations.append(rotation)
        finally:
            bench.close()
        result.problems = bench.problems
        return result


# -- reporting --------------------------------------------------------------------------------------------


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"


def format_result(result: SizeResult, concurrencies: Sequence[int]) -> list[str]:
    init = result.initial
    lines = [
        f"== {result.paths:,} paths over {result.scripts} scripts (seeded in {result.seed_seconds:.1f} s) ==",
        f"initial sync: {init.wall_seconds:.2f} s wall, {init.cpu_seconds:.2f} s CPU, "
        f"{init.pushes} pushes, ok={init.ok}",
        f"  Vault: {_counts(init.vault_requests)}",
        f"  Cloudflare: {_counts(init.cloudflare_calls)}",
        "",
        "unchanged steady state (per cycle; best = fastest cycle, CPU = median over cycles):",
        f"  {'client':<18} {'conc':>4} {'checks/s':>9} {'CPU us/check':>13} {'vs floor':>9}"
        f" {'Vault req':>9} {'CF calls':>8} {'emulator CPU s':>14}",
    ]
    for concurrency in concurrencies:
        floor_cpu = result.median_cpu_us(FLOOR_RAW, concurrency)
        for client in (FLOOR_RAW, FLOOR_REQUESTS, SYNCD):
            best = result.best(client, concurrency)
            cpu = result.median_cpu_us(client, concurrency)
            if best is None or cpu is None:
                continue
            factor = f"{cpu / floor_cpu:.1f}x" if floor_cpu else "-"
            emulator = "-" if best.emulator_cpu_seconds is None else f"{best.emulator_cpu_seconds:.2f}"
            lines.append(
                f"  {client:<18} {concurrency:>4} {best.checks_per_second:>9,.0f} {cpu:>13,.0f} {factor:>9}"
                f" {best.vault_requests:>9} {best.cloudflare_calls:>8} {emulator:>14}"
            )
    lines += ["", "rotations (one reconcile each):"]
    for rotation in result.rotations:
        lines.append(
            f"  {rotation.secrets:>4} secrets over {rotation.scripts:>3} scripts: "
            f"{rotation.calls} Cloudflare calls ({_counts(rotation.cloudflare_calls)}), "
            f"{rotation.calls_per_rotation:.2f}/rotation, {rotation.calls_per_script:.2f}/script, "
            f"{rotation.worker_versions_created} Worker versions, values arrived={rotation.values_arrived}, "
            f"{rotation.wall_seconds:.2f} s"
        )
    lines.append("problems: " + ("; ".join(result.problems) if result.problems else "none"))
    return lines


def as_json(result: SizeResult) -> dict[str, Any]:
    data = asdict(result)
    for measurement, raw in zip(result.measurements, data["measurements"], strict=True):
        raw["checks_per_second"] = measurement.checks_per_second
        raw["cpu_us_per_check"] = measurement.cpu_us_per_check
    for rotation, raw in zip(result.rotations, data["rotations"], strict=True):
        raw["calls_per_rotation"] = rotation.calls_per_rotation
        raw["calls_per_script"] = rotation.calls_per_script
    return data


def _rotation(text: str) -> tuple[int, int]:
    secrets, _, scripts = text.partition("x")
    return int(secrets), int(scripts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--paths", type=int, nargs="+", default=[1000, 10000], help="sizes (default 1000 10000)")
    parser.add_argument("--cycles", type=int, default=3, help="unchanged cycles per client (default 3)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 16], help="vault.concurrency (default 8 16)")
    parser.add_argument("--bindings-per-script", type=int, default=100, help="paths mapped to one script (max 100)")
    parser.add_argument(
        "--rotations",
        type=_rotation,
        nargs="*",
        default=list(DEFAULT_ROTATIONS),
        metavar="RxS",
        help="rotate R secrets over S scripts (default 1x1 50x5 100x1)",
    )
    parser.add_argument(
        "--cloudflare-rate-limit",
        type=int,
        default=None,
        help="raise the emulator's account limit (requests per 300 s); default: Cloudflare's real 1,200",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # syncd's logging as in production (JSON, info), so its cost is measured, but not on screen.
    with open(os.devnull, "w") as devnull:
        configure_logging(format="json", level="info", stream=devnull)
        limit = None if args.cloudflare_rate_limit is None else (args.cloudflare_rate_limit, 300.0)
        results = []
        for paths in args.paths:
            result = run_size(
                paths,
                cycles=args.cycles,
                concurrencies=args.concurrency,
                bindings_per_script=args.bindings_per_script,
                rotations=args.rotations,
                cloudflare_rate_limit=limit,
            )
            results.append(result)
            if not args.json:
                print("\n".join(format_result(result, args.concurrency)) + "\n", flush=True)
    if args.json:
        print(json.dumps({"machine_cpus": os.cpu_count(), "results": [as_json(r) for r in results]}, indent=2))
    return 1 if any(r.problems for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
