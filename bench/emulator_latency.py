"""The Cloudflare emulator's write latency: parallel across scripts, one at a time per script.

```
python bench/emulator_latency.py [--scripts 40] [--workers 8] [--latency 0.2]
```

Against one in-process emulator with a fixed write latency L, side by side in one run:

1. serial: one secret PUT per script, one after another; floor = scripts x L;
2. parallel: the same writes from ``workers`` threads; floor = ceil(scripts / workers) x L. A
   ratio near 1 shows the emulator does not serialize writes to different scripts;
   The emulator's request log (start/end per request) gives its side: how many writes it held
   at once; the client-side wall also includes the benchmark's own HTTP overhead;
3. one script: ``workers`` threads each writing once to the same script at the same moment; all
   but one are answered 429 (the concurrent-edit refusal), counted by the emulator.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``syncd`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from syncd.devstack.cloudflare import CloudflareEmulator


def _put(cf: CloudflareEmulator, client: httpx.Client, script: str) -> int:
    url = f"{cf.api_base}/accounts/{cf.account_id}/workers/scripts/{script}/secrets"
    return client.put(url, json={"name": "BENCH", "type": "secret_text", "text": "x"}).status_code


def _max_overlap(entries: list[dict[str, float]]) -> int:
    """The most requests the emulator was handling at one moment, from the log's start/end times."""
    events = sorted([(e["start"], 1) for e in entries] + [(e["end"], -1) for e in entries])
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scripts", type=int, default=40)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args(argv)
    scripts = [f"bench-{i}" for i in range(args.scripts)]
    headers = {"Authorization": "Bearer "}
    with CloudflareEmulator(scripts=[*scripts, "single"], write_latency=str(args.latency)) as cf:
        headers["Authorization"] += cf.api_token
        with httpx.Client(headers=headers, timeout=60) as client:
            serial = _timed(lambda: [_put(cf, client, s) for s in scripts])

        def parallel_writes() -> list[int]:
            local = threading.local()

            def one(script: str) -> int:
                if not hasattr(local, "client"):
                    local.client = httpx.Client(headers=headers, timeout=60)
                return _put(cf, local.client, script)

            with ThreadPoolExecutor(args.workers) as pool:
                return list(pool.map(one, scripts))

        httpx.delete(cf.url + "/__devstack/requests").raise_for_status()
        parallel = _timed(parallel_writes)
        served = httpx.get(cf.url + "/__devstack/requests").json()["requests"]
        server_span = max(e["end"] for e in served) - min(e["start"] for e in served)
        barrier = threading.Barrier(args.workers)

        def same_script(_: int) -> int:
            with httpx.Client(headers=headers, timeout=60) as own:
                barrier.wait()
                return _put(cf, own, "single")

        with ThreadPoolExecutor(args.workers) as pool:
            statuses = list(pool.map(same_script, range(args.workers)))
        stats = cf.edit_stats()
    serial_floor = args.scripts * args.latency
    parallel_floor = math.ceil(args.scripts / args.workers) * args.latency
    print(f"latency {args.latency:g} s, {args.scripts} scripts, {args.workers} workers")
    print(f"serial    wall {serial:7.3f} s  floor {serial_floor:7.3f} s  ratio {serial / serial_floor:5.2f}")
    print(f"parallel  wall {parallel:7.3f} s  floor {parallel_floor:7.3f} s  ratio {parallel / parallel_floor:5.2f}")
    print(
        f"parallel, emulator side: first start to last end {server_span:7.3f} s, "
        f"at most {_max_overlap(served)} writes in flight at once (workers: {args.workers})"
    )
    print(
        f"one script: {statuses.count(200)} x 200, {statuses.count(429)} x 429 "
        f"(emulator counted {stats['concurrent_edit_429s']} concurrent-edit 429s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
