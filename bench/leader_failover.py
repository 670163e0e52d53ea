"""How fast the standby takes the Lease: after SIGKILL of the leader, and after its clean stop.

```
python bench/leader_failover.py [--lease 15] [--renew 10] [--retry 2] [--warmup 4]
```

The Kubernetes emulator runs in this process; two candidate processes each run only the
``LeaderElector`` (``syncd.app.leadership.build_elector`` from ``[leader_election]`` settings, as the
service will) and print the ``CLOCK_MONOTONIC`` time (system-wide on Linux, so comparable across
processes) at which they start leading. The parent kills the leader with SIGKILL and reports the
time until the other leads; then it starts a fresh candidate, stops the new leader with SIGTERM
(which releases the Lease) and reports that handover too. Expect SIGKILL -> takeover between
lease - retry and lease + retry (the standby measures expiry from when it saw the last renewal),
and SIGTERM -> takeover within one retry period. This is the election's share of the issue's
failover target (SIGKILL -> first write by the new leader, < 20 s), not the whole of it: the
service's first cycle after takeover comes on top.
"""

from __future__ import annotations

import argparse
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import structlog

from syncd.devstack.kubernetes import KubernetesEmulator

NAMESPACE = "syncd"
DEADLINE_SECONDS = 120.0


def child(name: str, url: str, token_file: str, lease: float, renew: float, retry: float) -> int:
    from syncd.app.leadership import build_elector  # noqa: PLC0415 - the child only
    from syncd.config.leader import LeaderElectionSettings  # noqa: PLC0415

    settings = LeaderElectionSettings(
        enabled=True,
        namespace=NAMESPACE,
        identity=name,
        api_url=url,
        token_file=Path(token_file),
        ca_file=None,
        lease_duration_seconds=lease,
        renew_deadline_seconds=renew,
        retry_period_seconds=retry,
        request_timeout_seconds=min(retry, 2.0),
    )
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    done = threading.Event()

    def started() -> None:
        print(f"LEADING {time.monotonic():.6f}", flush=True)

    elector = build_elector(settings, on_started_leading=started, on_stopped_leading=done.set)
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    elector.start()
    done.wait()
    elector.stop()
    return 0


class Candidate:
    def __init__(self, name: str, kube: KubernetesEmulator, directory: Path, args: argparse.Namespace) -> None:
        token_file = directory / f"{name}.token"
        token_file.write_text(kube.add_token(f"system:serviceaccount:{NAMESPACE}:{name}"))
        command = [sys.executable, __file__, "--child", name, kube.url, str(token_file)]
        command += ["--lease", str(args.lease), "--renew", str(args.renew), "--retry", str(args.retry)]
        self.name = name
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)

    def leading_at(self, deadline: float) -> float | None:
        """The monotonic time it started leading, if it says so before ``deadline``."""
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                return None
            if line.startswith("LEADING "):
                return float(line.split()[1])
        return None

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def first_leader(candidates: list[Candidate], seconds: float) -> tuple[Candidate, float]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for candidate in candidates:
            at = candidate.leading_at(time.monotonic() + 0.05)
            if at is not None:
                return candidate, at
    raise SystemExit("no candidate became the leader before the deadline")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease", type=float, default=15.0)
    parser.add_argument("--renew", type=float, default=10.0)
    parser.add_argument("--retry", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds of renewals before the kill")
    parser.add_argument("--deadline", type=float, default=DEADLINE_SECONDS, help="give up after (s)")
    parser.add_argument("--child", nargs=3, metavar=("NAME", "URL", "TOKEN_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, url, token_file = args.child
        return child(name, url, token_file, args.lease, args.renew, args.retry)

    with KubernetesEmulator(namespace=NAMESPACE) as kube, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        a, b = Candidate("pod-a", kube, directory, args), Candidate("pod-b", kube, directory, args)
        c: Candidate | None = None
        try:
            leader, _ = first_leader([a, b], args.deadline)
            standby = b if leader is a else a
            time.sleep(args.warmup)  # the benchmark, not a test: let a few renewals happen
            killed_at = time.monotonic()
            leader.process.send_signal(signal.SIGKILL)
            took_over = standby.leading_at(killed_at + args.deadline)
            if took_over is None:
                raise SystemExit("the standby did not take over before the deadline")
            c = Candidate("pod-c", kube, directory, args)
            time.sleep(args.warmup)
            stopped_at = time.monotonic()
            standby.process.send_signal(signal.SIGTERM)
            handed_over = c.leading_at(stopped_at + args.deadline)
            if handed_over is None:
                raise SystemExit("the new standby did not take over after the clean stop")
        finally:
            for candidate in (a, b, c):
                if candidate is not None:
                    candidate.end()
        lease = kube.lease("syncd-leader")["spec"]
    print(f"timings: lease {args.lease:g} s, renew deadline {args.renew:g} s, retry period {args.retry:g} s")
    print(f"SIGKILL of the leader -> standby leads: {took_over - killed_at:6.2f} s  (bound: lease + retry)")
    print(f"SIGTERM of the leader -> standby leads: {handed_over - stopped_at:6.2f} s  (released: <= retry)")
    print(f"lease now held by {lease.get('holderIdentity')}, leaseTransitions {lease.get('leaseTransitions')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
