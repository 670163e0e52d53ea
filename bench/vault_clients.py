"""CPU per version check per Vault client, side by side in one run: the floor, urllib3, hvac, syncd.

```
python bench/vault_clients.py [--paths 1000 10000] [--rounds 3] [--concurrency 8] [--json]
```

For each size N it seeds N KV v2 secrets (and the Worker scripts) in a devstack subprocess, runs
syncd's initial sync, then ``--rounds`` rounds in which every client makes the same N metadata
reads (``GET /v1/secret/metadata/<path>``, keep-alive, ``--concurrency`` threads), interleaved so
that drift of the machine hits every client alike:

- ``http.client`` (the floor): one stdlib connection per thread, JSON parsed, nothing else;
- ``PooledHttp``: syncd's lean transport alone (shared pool, no reader around it);
- ``urllib3``: one ``HTTPConnectionPool`` used directly;
- ``httpx``: one sync ``httpx.Client``;
- ``hvac``: ``read_secret_metadata`` on a requests session as syncd used to build it;
- ``syncd``: one whole unchanged reconcile cycle, built as ``syncd run`` builds it.

CPU per check is the benchmark process's ``process_time`` over the pass / N, median over rounds;
only the measured client runs in the process meanwhile. The ratio is to the floor of the same size.
Each pass must make exactly N Vault requests and no Cloudflare call (else it is listed as a problem
and the exit status is 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``syncd`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._floor import (
    httpx_metadata_reads,
    hvac_metadata_reads,
    pooled_metadata_reads,
    raw_metadata_reads,
    urllib3_metadata_reads,
)
from bench._stack import Admin, DevstackProcess, new_value
from bench.steady_state import SYNCD, Measurement, _Bench
from bench.workload import Workload
from syncd.app.service.logs import configure_logging

FLOOR = "http.client (floor)"
Reads = Callable[[str, str, Sequence[str], int], dict[str, int]]
CLIENTS: dict[str, Reads] = {
    FLOOR: raw_metadata_reads,
    "PooledHttp (syncd's transport)": pooled_metadata_reads,
    "urllib3": urllib3_metadata_reads,
    "httpx": httpx_metadata_reads,
    "hvac": hvac_metadata_reads,
}


def run_size(paths: int, rounds: int, concurrency: int) -> tuple[list[Measurement], list[str]]:
    workload = Workload(paths)
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp, DevstackProcess() as devstack:
        assert devstack.endpoints is not None
        admin = Admin(devstack.endpoints)
        admin.create_scripts(workload.scripts)
        admin.write_secrets({workload.path(i): new_value("seed") for i in range(paths)})
        bench = _Bench(workload, devstack, admin, Path(tmp))
        measurements: list[Measurement] = []
        try:
            bench.initial_sync(concurrency)
            names = [workload.path(i) for i in range(paths)]
            endpoints = admin.endpoints
            clients, cycle = bench.syncd(concurrency)
            try:
                for number in range(1, rounds + 1):
                    for name, reads in CLIENTS.items():

                        def run(reads: Reads = reads) -> dict[str, int]:
                            return reads(endpoints.vault_addr, endpoints.vault_token, names, concurrency)

                        measurements.append(bench.measure(name, concurrency, number, run))
                    measurements.append(bench.measure(SYNCD, concurrency, number, cycle))
            finally:
                clients.close()
        finally:
            bench.close()
        return measurements, bench.problems


def median_cpu_us(measurements: Sequence[Measurement], client: str) -> float:
    runs = sorted(m.cpu_us_per_check for m in measurements if m.client == client)
    return runs[len(runs) // 2]


def format_size(paths: int, measurements: Sequence[Measurement], problems: Sequence[str]) -> list[str]:
    floor = median_cpu_us(measurements, FLOOR)
    lines = [
        f"== {paths:,} secrets, {measurements[0].concurrency} threads ==",
        f"  {'client':<32} {'CPU us/check':>12} {'vs floor':>9} {'checks/s (best)':>16}",
    ]
    for client in [*CLIENTS, SYNCD]:
        cpu = median_cpu_us(measurements, client)
        best = max(m.checks_per_second for m in measurements if m.client == client)
        label = "syncd cycle" if client == SYNCD else client
        lines.append(f"  {label:<32} {cpu:>12,.0f} {cpu / floor:>8.2f}x {best:>16,.0f}")
    lines.append("problems: " + ("; ".join(problems) if problems else "none"))
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--paths", type=int, nargs="+", default=[1000, 10000], help="sizes (default 1000 10000)")
    parser.add_argument("--rounds", type=int, default=3, help="passes per client (default 3; the median counts)")
    parser.add_argument("--concurrency", type=int, default=8, help="threads / vault.concurrency (default 8)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of the tables")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results: list[dict[str, Any]] = []
    failed = False
    with open(os.devnull, "w") as devnull:
        configure_logging(format="json", level="info", stream=devnull)
        for paths in args.paths:
            started = time.perf_counter()
            measurements, problems = run_size(paths, args.rounds, args.concurrency)
            failed = failed or bool(problems)
            floor = median_cpu_us(measurements, FLOOR)
            results.append(
                {
                    "paths": paths,
                    "cpu_us_per_check": {c: median_cpu_us(measurements, c) for c in [*CLIENTS, SYNCD]},
                    "vs_floor": {c: median_cpu_us(measurements, c) / floor for c in [*CLIENTS, SYNCD]},
                    "problems": problems,
                    "seconds": time.perf_counter() - started,
                }
            )
            if not args.json:
                print("\n".join(format_size(paths, measurements, problems)) + "\n", flush=True)
    if args.json:
        print(json.dumps({"machine_cpus": os.cpu_count(), "results": results}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
