"""What the devstack's Workers runtime (workerd) costs: start-up, and a reload per size.

```
python bench/workers_runtime.py [--sizes 10 100 1000] [--reloads 3] [--starts 5] [--json]
```

- **Start-up**: ``python -m syncd.devstack`` with and without the runtime (``--no-workers``), from
  spawning the process to its JSON line (the emulators accept connections and, with the runtime,
  workerd listens), ``--starts`` times each, median.
- **Reload** per size (``--sizes``: that many scripts, each on the default Worker with two
  ``secret_text`` bindings, one Worker per deployed version, all in one workerd): the first start,
  then ``--reloads`` secret writes to one script, each timed from the write to the runtime serving
  it (``WorkersRuntime.wait_settled``; the debounce, 50 ms, included), split into rendering the
  config, writing it, and workerd's start until it listens (``ReloadTiming``). ``workerd RSS`` is
  the serving process's resident memory after the last reload (during a reload the old and the new
  process both run, so the peak is about twice that).

workerd is found as the devstack finds it (``.tools``, ``$SYNCD_WORKERD``, ``PATH``); without it
the benchmark says so and exits 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``syncd`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import REPO_ROOT, DevstackProcess
from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.devstack.workers.runtime import WorkersRuntime
from syncd.devstack.workers.tools import find_workerd, missing_workerd_reason

RELOAD_TIMEOUT_SECONDS = 600.0


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def start_seconds(workers: bool, starts: int) -> float:
    times = []
    for _ in range(starts):
        began = time.monotonic()
        devstack = DevstackProcess(workers=workers)
        devstack.start(timeout=120)
        times.append(time.monotonic() - began)
        if workers:
            assert devstack.endpoints is not None and devstack.endpoints.workers_url, "the runtime did not start"
        devstack.stop()
    return statistics.median(times)


def secret(name: str, value: str) -> dict[str, str]:
    return {"name": name, "type": "secret_text", "text": value}


def reload_cost(workerd: Path, scripts: int, reloads: int) -> dict[str, Any]:
    names = [f"w{n:05d}" for n in range(scripts)]
    cf = CloudflareEmulator(scripts=names)
    for name in names:
        cf.hand_edit(name, upserts={"A": secret("A", f"{name}-a"), "B": secret("B", f"{name}-b")})
    began = time.monotonic()
    runtime = WorkersRuntime(cf.store, workerd, default_account=cf.account_id).start()
    first = time.monotonic() - began
    try:
        totals, starts, renders = [], [], []
        for n in range(reloads):
            before = len(runtime.timings)
            written = time.monotonic()
            cf.hand_edit(names[0], upserts={"A": secret("A", f"rotated-{n}")})
            if not runtime.wait_settled(RELOAD_TIMEOUT_SECONDS):
                raise TimeoutError(f"{scripts} scripts: no reload within {RELOAD_TIMEOUT_SECONDS:.0f} s")
            totals.append(time.monotonic() - written)
            timing = runtime.timings[before]
            starts.append(timing.start_seconds)
            renders.append(timing.render_seconds + timing.write_seconds)
        pid = runtime.status()["pid"]
        return {
            "scripts": scripts,
            "first_start_seconds": first,
            "reload_seconds": statistics.median(totals),
            "workerd_start_seconds": statistics.median(starts),
            "render_and_write_seconds": statistics.median(renders),
            "config_bytes": runtime.timings[-1].config_bytes,
            "workerd_rss_mib": rss_mib(int(pid)) if pid else None,
        }
    finally:
        runtime.stop()


def format_report(with_workers: float, without: float, rows: list[dict[str, Any]], reloads: int) -> str:
    lines = [
        f"devstack start-up (spawn -> JSON line), median: {without:.2f} s without workerd,"
        f" {with_workers:.2f} s with workerd (no scripts)",
        "",
        f"reload after one secret write, median of {reloads}:",
        "",
        "| scripts | first start | write -> served | of which workerd start | render + write | config | workerd RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rss = f"{row['workerd_rss_mib']:.0f} MiB" if row["workerd_rss_mib"] is not None else "-"
        lines.append(
            f"| {row['scripts']} | {row['first_start_seconds']:.2f} s | {row['reload_seconds']:.2f} s"
            f" | {row['workerd_start_seconds']:.2f} s | {row['render_and_write_seconds'] * 1000:.0f} ms"
            f" | {row['config_bytes'] / 1024:.0f} KiB | {rss} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000], help="scripts per runtime")
    parser.add_argument("--reloads", type=int, default=3, help="timed reloads per size (default 3)")
    parser.add_argument("--starts", type=int, default=5, help="devstack starts per variant (default 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    workerd = find_workerd()
    if workerd is None:
        print(f"workers_runtime: {missing_workerd_reason()}", file=sys.stderr)
        return 2
    without = start_seconds(False, args.starts)
    with_workers = start_seconds(True, args.starts)
    rows = [reload_cost(workerd, size, args.reloads) for size in args.sizes]
    if args.json:
        print(json.dumps({"start_without": without, "start_with": with_workers, "rows": rows, "cwd": str(REPO_ROOT)}))
    else:
        print(format_report(with_workers, without, rows, args.reloads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
