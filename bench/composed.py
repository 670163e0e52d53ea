"""Composed values: templated bindings next to plain ones, and a static role's scheduled rotation.

```
python bench/composed.py [--paths 10000] [--cycles 3] [--concurrency 8] [--rotations 24]
                         [--period 5] [--mappings-per-role 10] [--skip-templates] [--skip-rotation] [--json]
```

Part 1, templates vs plain (one devstack in a subprocess, so its CPU is not counted as syncd's):
N plain mappings (``secret/bench/pNNNNN`` key ``value`` -> binding ``SNNNNN``) and N templated
mappings of two KV v2 sources each (the same ``pNNNNN`` as ``vault`` and ``secret/bench/cNNNNN``
as ``cfg``; ``SNNNNN = "postgres://app:{{ vault.value | urlencode }}@{{ cfg.host }}/db"``), on
separate scripts and state files. Initial sync of each (wall, CPU), then ``--cycles`` unchanged
cycles of each, interleaved. CPU per check = the cycle's CPU / its metadata reads (N plain, 2N
templated); the templated cycle must cost at most 10 % more per check.

Part 2, a scheduled static-role rotation to the Worker: a devstack with ``--db-role app:PERIOD``
(Vault rotates the password by itself every PERIOD seconds, no request involved) and the real
service (``build_service``: real APScheduler, interval 300 s, no notification source) with
``--mappings-per-role`` mappings whose ``DATABASE_URL`` templates read the role and a KV secret.
For each of ``--rotations`` rotations: the lag from ``last_vault_rotation`` (the emulator's clock,
the machine's) to the Cloudflare emulator's answer to the write that carried it (its request log).
Vault reads of ``static-creds`` are counted: one per rotation, plus one per backstop cycle.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``syncd`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import Admin, DevstackProcess, Endpoints, in_parallel, new_value
from bench.workload import Workload, config_toml
from syncd.app.service.logs import configure_logging
from syncd.app.service.metrics import Metrics
from syncd.app.service.wiring import build_clients, build_reconciler, build_service, open_state
from syncd.config import Settings, parse_config
from syncd.engine.report import CycleReport
from syncd.engine.values import bindings_for
from syncd.model import KvVersion, SecretData, SecretVersion

TEMPLATE = "postgres://app:{{ vault.value | urlencode }}@{{ cfg.host }}/db"
DB_TEMPLATE = "postgres://{{ db.username }}:{{ db.password | urlencode }}@{{ cfg.host }}/app"
MAX_EXTRA_CPU = 0.10  # templates may cost at most 10 % more CPU per unchanged check


def templated_toml(workload: Workload, endpoints: Endpoints, *, concurrency: int, state_path: Path) -> str:
    """The plain workload's config with every mapping templated over two sources, on ``tmpl-`` scripts."""
    head = config_toml(
        Workload(1, workload.bindings_per_script), endpoints, concurrency=concurrency, state_path=state_path
    )
    head = head[: head.index("[[mapping]]")]
    lines = [head]
    for i in range(workload.paths):
        lines += [
            "[[mapping]]",
            f'name = "tmpl-{i:05d}"',
            f'vault = {{ mount = "secret", path = "{workload.path(i)}", kv_version = 2 }}',
            f'target = {{ script = "tmpl-{i // workload.bindings_per_script:03d}" }}',
            f'sources = {{ cfg = {{ mount = "secret", path = "bench/c{i:05d}", kv_version = 2 }} }}',
            f'templates = {{ {workload.binding(i)} = "{TEMPLATE}" }}',
        ]
    return "\n".join(lines) + "\n"


@dataclass
class Run:
    world: str  # "plain" | "templated"
    what: str  # "initial" | "unchanged N"
    wall_seconds: float
    cpu_seconds: float
    metadata_reads: int
    data_reads: int
    cloudflare_calls: int
    ok: bool

    @property
    def cpu_us_per_check(self) -> float:
        return self.cpu_seconds / max(1, self.metadata_reads) * 1e6


@dataclass
class TemplatesResult:
    paths: int
    load_seconds: dict[str, float] = field(default_factory=dict)
    # CPU microseconds to compute one mapping's bindings from its read sources (no I/O): what a
    # rotation's cycle spends on the values themselves, plain key vs template.
    values_us: dict[str, float] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def median_cpu_us(self, world: str) -> float:
        return statistics.median(r.cpu_us_per_check for r in self.runs if r.world == world and r.what != "initial")


def _reads(admin: Admin) -> tuple[int, int, int]:
    vault = admin.requests("vault")
    metadata = sum(1 for m, p, _ in vault if m == "GET" and p.startswith("/v1/secret/metadata/"))
    data = sum(1 for m, p, _ in vault if m == "GET" and p.startswith("/v1/secret/data/"))
    return metadata, data, len(admin.requests("cloudflare"))


def bench_templates(paths: int, cycles: int, concurrency: int, workdir: Path) -> TemplatesResult:
    result = TemplatesResult(paths)
    workload = Workload(paths)
    with DevstackProcess() as devstack:
        assert devstack.endpoints is not None
        admin = Admin(devstack.endpoints)
        admin.write_secrets({workload.path(i): new_value("plain") for i in range(paths)})
        in_parallel(  # the templates' second sources: one key "host" each
            lambda i: admin.vault.ok("POST", f"/v1/secret/data/bench/c{i:05d}", {"data": {"host": f"db{i}.internal"}}),
            range(paths),
        )
        admin.create_scripts(workload.scripts)
        admin.create_scripts([f"tmpl-{n:03d}" for n in range(workload.script_count)])
        worlds: dict[str, Any] = {}
        for world, make in (("plain", config_toml), ("templated", templated_toml)):
            state_path = workdir / f"{world}.sqlite3"
            text = make(workload, devstack.endpoints, concurrency=concurrency, state_path=state_path)
            started = time.perf_counter()
            settings = parse_config(text, str(workdir / f"{world}.toml"))
            result.load_seconds[world] = time.perf_counter() - started
            clients = build_clients(settings, Metrics())
            clients.tokens.ensure_token()
            reconciler = build_reconciler(settings, clients, open_state(settings))
            worlds[world] = (settings, clients, reconciler)
        result.values_us = {world: _values_cpu_us(settings) for world, (settings, _, _) in worlds.items()}
        try:
            for world, (settings, _, reconciler) in worlds.items():
                result.runs.append(_measure(admin, world, "initial", settings, reconciler))
            for number in range(1, cycles + 1):
                for world, (settings, _, reconciler) in worlds.items():
                    run = _measure(admin, world, f"unchanged {number}", settings, reconciler)
                    result.runs.append(run)
                    sources = paths * (2 if world == "templated" else 1)
                    if run.metadata_reads != sources or run.data_reads or run.cloudflare_calls or not run.ok:
                        result.problems.append(f"{world} {run.what}: not a clean no-op ({asdict(run)})")
        finally:
            for _, clients, _ in worlds.values():
                clients.close()
    plain, templated = result.median_cpu_us("plain"), result.median_cpu_us("templated")
    if templated > plain * (1 + MAX_EXTRA_CPU):
        result.problems.append(f"templated checks cost {templated / plain - 1:.0%} more CPU than plain ones (> 10 %)")
    return result


def _values_cpu_us(settings: Settings) -> float:
    """CPU per mapping of ``bindings_for`` over in-memory reads of its sources (median of 3 passes)."""
    reads = {}
    for m in settings.mappings:
        primary = SecretVersion(m.vault.ref, KvVersion.V2, 1, None, SecretData({"value": new_value("v")}))
        others = {
            s.name: SecretVersion(s.ref, KvVersion.V2, 1, None, SecretData({"host": "db.internal"}))
            for s in m.more_sources
        }
        reads[m.name] = (primary, others)
    passes = []
    for _ in range(3):
        cpu = time.process_time()
        for m in settings.mappings:
            primary, others = reads[m.name]
            bindings_for(m, settings.target_of(m), primary, on_delete="keep", others=others)
        passes.append((time.process_time() - cpu) / len(settings.mappings) * 1e6)
    return statistics.median(passes)


def _measure(admin: Admin, world: str, what: str, settings: Settings, reconciler: Any) -> Run:
    admin.clear_requests()
    cpu, wall = time.process_time(), time.perf_counter()
    report: CycleReport = reconciler.reconcile(deadline=time.time() + settings.sync.cycle_timeout_seconds)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    metadata, data, cloudflare = _reads(admin)
    return Run(world, what, wall, cpu, metadata, data, cloudflare, report.ok)


# -- part 2: a scheduled rotation ---------------------------------------------------------------------


@dataclass
class RotationResult:
    period: float
    mappings: int
    lags: list[float] = field(default_factory=list)
    static_creds_reads: int = 0
    rotations: int = 0
    problems: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _epoch(value: object) -> float:
    """The admin route's ``last_vault_rotation``: epoch seconds (or RFC 3339 text)."""
    if isinstance(value, int | float):
        return float(value)
    main, _, rest = str(value).rstrip("Z").partition(".")
    return datetime.fromisoformat(main + "+00:00").timestamp() + (float("0." + rest) if rest else 0.0)


def rotation_config(endpoints: Endpoints, mappings: int, state_path: Path) -> str:
    head = config_toml(Workload(1), endpoints, concurrency=4, state_path=state_path)
    head = head[: head.index("[[mapping]]")].replace("cycle_timeout_seconds = 1800", "cycle_timeout_seconds = 60")
    lines = [head.replace("[sync]", "[sync]\ninterval_seconds = 300\njitter_seconds = 0")]
    for i in range(mappings):
        lines += [
            "[[mapping]]",
            f'name = "db-{i:02d}"',
            f'target = {{ script = "db-{i:02d}" }}',
            'sources = { db = { kind = "database", role = "app" }, '
            f'cfg = {{ mount = "secret", path = "db/cfg{i:02d}", kv_version = 2 }} }}',
            f"templates = {{ DATABASE_URL = {json.dumps(DB_TEMPLATE)} }}",
        ]
    return "\n".join(lines) + "\n"


def bench_rotation(rotations: int, period: float, mappings: int, workdir: Path) -> RotationResult:
    result = RotationResult(period, mappings)
    with DevstackProcess(extra_args=["--db-role", f"app:{int(period)}s"]) as devstack:
        assert devstack.endpoints is not None
        admin = Admin(devstack.endpoints)
        in_parallel(
            lambda i: admin.vault.ok("POST", f"/v1/secret/data/db/cfg{i:02d}", {"data": {"host": f"db{i}.internal"}}),
            range(mappings),
        )
        admin.create_scripts([f"db-{i:02d}" for i in range(mappings)])
        path = workdir / "rotation.toml"
        path.write_text(rotation_config(devstack.endpoints, mappings, workdir / "rotation.sqlite3"))
        admin.clear_requests()
        service = build_service(parse_config(path.read_text(), str(path)), path)
        service.start()
        try:
            seen: dict[str, float] = {}
            deadline = time.time() + (rotations + 2) * period + 30
            while len(seen) < rotations + 1 and time.time() < deadline:
                roles = admin.vault.ok("GET", "/__devstack/database/static-roles")["static_roles"]
                rotated = roles[0]["last_vault_rotation"]
                seen.setdefault(str(rotated), _epoch(rotated))
                time.sleep(0.05)  # the benchmark, not a test: sampling the emulator's rotations
            time.sleep(period / 2)  # let the last rotation's writes land
        finally:
            service.shutdown()
        writes = [t for m, p, s, t in admin.timed_requests("cloudflare") if m == "PATCH" and s == 200]
        vault = admin.requests("vault")
        result.static_creds_reads = sum(1 for m, p, _ in vault if "/static-creds/" in p)
        times = sorted(seen.values())
        result.rotations = len(times) - 1
        for at in times[1:]:  # the first is the seed's rotation, before the service started
            after = [t for t in writes if t >= at]
            if len(after) < mappings:
                result.problems.append(f"a rotation at {at:.3f} did not reach all {mappings} Workers")
                continue
            result.lags.append(sorted(after)[mappings - 1] - at)  # the last of its Workers
    if result.lags and result.percentile(0.99) >= 2.0:
        result.problems.append(f"p99 {result.percentile(0.99):.2f} s is not under 2 s")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rotations", type=int, default=24)
    parser.add_argument("--period", type=float, default=5.0)
    parser.add_argument("--mappings-per-role", type=int, default=10)
    parser.add_argument("--skip-templates", action="store_true")
    parser.add_argument("--skip-rotation", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    problems: list[str] = []
    document: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="syncd-composed-") as tmp, open("/dev/null", "w") as devnull:
        configure_logging(format="json", level="warning", stream=devnull)
        if not args.skip_templates:
            templates = bench_templates(args.paths, args.cycles, args.concurrency, Path(tmp))
            problems += templates.problems
            document["templates"] = asdict(templates)
            if not args.json:
                _print_templates(templates)
        if not args.skip_rotation:
            rotation = bench_rotation(args.rotations, args.period, args.mappings_per_role, Path(tmp))
            problems += rotation.problems
            document["rotation"] = asdict(rotation)
            if not args.json:
                _print_rotation(rotation)
    if args.json:
        print(json.dumps({**document, "problems": problems}, indent=2))
    else:
        print(f"problems: {'; '.join(problems) or 'none'}")
    return 1 if problems else 0


def _print_templates(result: TemplatesResult) -> None:
    print(f"== {result.paths:,} plain vs {result.paths:,} templated mappings (two KV v2 sources each) ==")
    print("config load: " + ", ".join(f"{w} {s:.2f} s" for w, s in result.load_seconds.items()))
    print("values of one mapping (CPU, no I/O): " + ", ".join(f"{w} {us:.1f} us" for w, us in result.values_us.items()))
    columns = zip(("wall s", "CPU s", "metadata", "data", "CF", "CPU us/check"), (7, 7, 9, 7, 4, 13), strict=True)
    print(f"  {'world':<10} {'cycle':<12} " + " ".join(f"{c:>{w}}" for c, w in columns))
    for r in result.runs:
        print(
            f"  {r.world:<10} {r.what:<12} {r.wall_seconds:>7.2f} {r.cpu_seconds:>7.2f} {r.metadata_reads:>9} "
            f"{r.data_reads:>7} {r.cloudflare_calls:>4} {r.cpu_us_per_check:>13.0f}"
        )
    plain, templated = result.median_cpu_us("plain"), result.median_cpu_us("templated")
    extra = templated / plain - 1
    print(f"unchanged, median CPU per check: plain {plain:.0f} us, templated {templated:.0f} us ({extra:+.1%})")


def _print_rotation(result: RotationResult) -> None:
    print(f"== scheduled static-role rotation, period {result.period:g} s, {result.mappings} mappings on one role ==")
    if result.lags:
        print(
            f"rotation -> last of its Workers written: n={len(result.lags)} "
            f"median {statistics.median(result.lags):.3f} s, "
            f"p99 {result.percentile(0.99):.3f} s, max {max(result.lags):.3f} s"
        )
    print(f"rotations {result.rotations}, static-creds reads {result.static_creds_reads} (one per check of the role)")


if __name__ == "__main__":
    sys.exit(main())
