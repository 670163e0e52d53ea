"""Resident memory of ``syncd run`` with N mappings: after convergence and after more cycles.

```
python bench/memory.py [--paths 10000] [--cycles 20] [--interval 1] [--json]
```

Seeds N KV v2 secrets and ceil(N / 100) Worker scripts in a devstack subprocess (as
``steady_state.py`` does), writes the same config with the HTTP server on (loopback, a free port),
``interval_seconds = --interval`` and no jitter, and starts ``python -m syncd run`` in its own
process. It reads that process's RSS (``VmRSS`` in ``/proc/<pid>/status``; ``VmHWM`` is the peak)
once the first cycle has synced everything (convergence), then after every further cycle until
``--cycles`` more have run (counted from ``syncd_cycles_total`` on ``/metrics``, scraped every
0.2 s with ``Accept-Encoding: gzip`` as Prometheus scrapes). Flat means the
last RSS is within a few MiB of the one at convergence. Exit status 1 when a cycle failed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``syncd`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import REPO_ROOT, Admin, DevstackProcess, new_value
from bench.workload import Workload, config_toml

MIB = 1024 * 1024


@dataclass
class MemoryResult:
    paths: int
    converge_seconds: float
    rss_converged_mib: float
    rss_samples_mib: list[float] = field(default_factory=list)  # after each further cycle
    peak_mib: float = 0.0
    cycles_ok: int = 0
    cycles_failed: int = 0

    @property
    def rss_last_mib(self) -> float:
        return self.rss_samples_mib[-1] if self.rss_samples_mib else self.rss_converged_mib


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _proc_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for process {pid}")


def _cycles(port: int) -> tuple[int, int]:
    """(ok, not ok) cycles so far, from ``syncd_cycles_total`` on /metrics."""
    # Asked for as Prometheus asks for it (gzip): what a scrape costs in production.
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
    text = body.decode()
    ok = failed = 0
    for line in text.splitlines():
        if line.startswith("syncd_cycles_total{"):
            count = int(float(line.rsplit(" ", 1)[1]))
            if 'outcome="ok"' in line:
                ok += count
            else:
                failed += count
    return ok, failed


def _wait_cycles(process: subprocess.Popen[bytes], port: int, total: int, timeout: float) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"syncd run exited with {process.returncode}")
        try:
            ok, failed = _cycles(port)
        except OSError:
            ok, failed = 0, 0  # the server is not up yet
        if ok + failed >= total:
            return ok, failed
        if time.monotonic() > deadline:
            raise TimeoutError(f"{ok + failed} cycles after {timeout} s, waiting for {total}")
        time.sleep(0.2)


def measure(paths: int, cycles: int, interval: float, timeout: float, log: Path | None) -> MemoryResult:
    workload = Workload(paths)
    with tempfile.TemporaryDirectory(prefix="syncd-memory-") as tmp, DevstackProcess() as devstack:
        assert devstack.endpoints is not None
        admin = Admin(devstack.endpoints)
        admin.create_scripts(workload.scripts)
        admin.write_secrets({workload.path(i): new_value("seed") for i in range(paths)})
        port = _free_port()
        text = config_toml(workload, devstack.endpoints, concurrency=8, state_path=Path(tmp) / "state.sqlite3")
        text = text.replace("[sync]\n", f"[sync]\ninterval_seconds = {interval}\njitter_seconds = 0\n", 1)
        text = text.replace("[server]\nenabled = false", f'[server]\nenabled = true\nbind = "127.0.0.1"\nport = {port}')
        config = Path(tmp) / "syncd.toml"
        config.write_text(text)
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        with open(log or os.devnull, "wb") as out:
            started = time.monotonic()
            process = subprocess.Popen(
                [sys.executable, "-m", "syncd", "run", "--config", str(config), "--log-format", "json"],
                stdout=out,
                stderr=out,
                env=env,
                cwd=REPO_ROOT,
            )
            try:
                ok, failed = _wait_cycles(process, port, 1, timeout)
                result = MemoryResult(
                    paths, time.monotonic() - started, _proc_kib(process.pid, "VmRSS") * 1024 / MIB
                )
                done = ok + failed
                while done < 1 + cycles:
                    ok, failed = _wait_cycles(process, port, done + 1, timeout)
                    done = ok + failed
                    result.rss_samples_mib.append(_proc_kib(process.pid, "VmRSS") * 1024 / MIB)
                result.peak_mib = _proc_kib(process.pid, "VmHWM") * 1024 / MIB
                result.cycles_ok, result.cycles_failed = ok, failed
                return result
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def format_result(result: MemoryResult) -> list[str]:
    samples = result.rss_samples_mib or [result.rss_converged_mib]
    return [
        f"== syncd run, {result.paths:,} mappings ==",
        f"converged (first cycle done) after {result.converge_seconds:.1f} s: RSS {result.rss_converged_mib:.1f} MiB",
        f"after {len(result.rss_samples_mib)} more cycles: RSS {result.rss_last_mib:.1f} MiB "
        f"(min {min(samples):.1f}, max {max(samples):.1f}; change since convergence "
        f"{result.rss_last_mib - result.rss_converged_mib:+.1f} MiB); peak (VmHWM) {result.peak_mib:.1f} MiB",
        f"cycles: {result.cycles_ok} ok, {result.cycles_failed} not ok",
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--paths", type=int, default=10000, help="mappings (one secret each; default 10000)")
    parser.add_argument("--cycles", type=int, default=20, help="cycles to run after convergence (default 20)")
    parser.add_argument("--interval", type=float, default=1.0, help="sync.interval_seconds (default 1, the minimum)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up waiting for a cycle after this")
    parser.add_argument("--log", type=Path, default=None, help="keep syncd's log here (default: discarded)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of text")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = measure(args.paths, args.cycles, args.interval, args.timeout, args.log)
    if args.json:
        print(json.dumps(asdict(result) | {"rss_last_mib": result.rss_last_mib}, indent=2))
    else:
        print("\n".join(format_result(result)))
    return 1 if result.cycles_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
