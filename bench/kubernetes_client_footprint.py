"""What the official ``kubernetes`` client would cost syncd, next to the httpx it already has.

```
python bench/kubernetes_client_footprint.py [--runs 5]
```

For each candidate, in fresh interpreters (median of ``--runs``): the wall time of importing what
leader election needs, and the process's peak RSS after the import. Then the installed size of the
candidate's distribution plus the dependencies syncd would not otherwise install. Figures are
printed side by side from one run; the ratio is the claim, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path

CANDIDATES = {
    "httpx (thin client)": "import httpx",
    "kubernetes (official)": "from kubernetes import client, config",
}
PROBE = (
    "import resource, time\n"
    "t = time.perf_counter()\n"
    "{statement}\n"
    "elapsed = time.perf_counter() - t\n"
    "print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


def measure(statement: str, runs: int) -> tuple[float, float]:
    seconds, rss_kib = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(statement=statement)], capture_output=True, text=True, check=True
        ).stdout.split()
        seconds.append(float(out[0]))
        rss_kib.append(float(out[1]))
    return statistics.median(seconds), statistics.median(rss_kib) / 1024


def _requirements(name: str) -> set[str]:
    try:
        requires = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return set()
    names = set()
    for requirement in requires:
        if "extra ==" in requirement:
            continue
        match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
        if match:
            names.add(match.group(0).lower().replace("_", "-"))
    return names


def closure(roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_requirements(name) - seen)
    return seen


def installed_mib(names: set[str]) -> float:
    total = 0
    for name in names:
        try:
            files = metadata.files(name) or []
        except metadata.PackageNotFoundError:
            continue
        for file in files:
            path = Path(str(file.locate()))
            if path.is_file():
                total += path.stat().st_size
    return total / (1024 * 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    syncd_runtime = closure({"syncd"})
    print(f"{'candidate':<24} {'import s':>9} {'peak RSS MiB':>13} {'extra dists':>12} {'extra MiB':>10}")
    for label, statement in CANDIDATES.items():
        seconds, rss = measure(statement, args.runs)
        root = "kubernetes" if "kubernetes" in statement else "httpx"
        extra = closure({root}) - syncd_runtime
        print(f"{label:<24} {seconds:>9.3f} {rss:>13.1f} {len(extra):>12} {installed_mib(extra):>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
