"""Failover of the whole service: SIGKILL of the leading ``syncd run`` to the new leader's first write.

```
python bench/failover.py [--lease 15] [--runs 2]
```

Two real ``syncd run`` replicas (leader election on one Lease, the ``kubernetes`` state backend)
against the devstack (``tests/ha_stack.py``), with client-go's default timings unless ``--lease``
scales them (renew = 2/3, retry = 2/15 of the lease: 10 s and 2 s for 15 s). Each run:

1. **unchanged world**: SIGKILL the leader; wait until the standby has taken the Lease and finished
   its takeover cycle; count the Cloudflare calls it made (target: 0: the bindings are in sync and
   the new leader reads the state the old one left);
2. **rotation**: SIGKILL the (new) leader and rotate a Vault secret at the same moment; time from
   the kill to the first Cloudflare write by the replica that takes over (target: under 20 s with
   the default 15 s Lease), and the writes it made (target: 1, the rotated script).

A killed replica is restarted as Kubernetes would, so every run has a standby. Figures come from
the emulators' request logs (the User-Agent names the replica) and the Lease.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ha_stack import API_PATH, HaStack, Replica
from tests.waiting import wait_until as wait_for

DEADLINE = 120.0


def _leader(ha: HaStack, replicas: dict[str, Replica]) -> str:
    if not wait_for(lambda: ha.holder() in replicas, DEADLINE):
        raise SystemExit("nobody took the Lease")
    holder = ha.holder()
    assert holder is not None
    return holder


def _settled(replica: Replica, cycles: int) -> bool:
    return replica.log().count('"event": "cycle finished"') >= cycles


def _restart(ha: HaStack, replicas: dict[str, Replica], name: str, generation: int) -> str:
    fresh = f"{name.rstrip('0123456789')}{generation}"
    replicas.pop(name)
    replicas[fresh] = ha.start(fresh)
    return fresh


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lease", type=float, default=15.0, help="lease duration in seconds (default 15)")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    quiet_calls: list[int] = []
    failover: list[float] = []
    rotation_writes: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        ha = HaStack(Path(tmp), lease_seconds=args.lease, interval_seconds=30.0)
        try:
            replicas = {"a": ha.start("a"), "b": ha.start("b")}
            generation = 1
            leader = _leader(ha, replicas)
            if not wait_for(lambda: _settled(replicas[leader], 1), DEADLINE):
                raise SystemExit("the first leader did not finish a cycle")
            for run in range(args.runs):
                # 1. unchanged world
                before = len(ha.cloudflare_requests())
                replicas[leader].kill()
                standby = next(n for n in replicas if n != leader)
                cycles = replicas[standby].log().count('"event": "cycle finished"')
                if not wait_for(lambda: ha.holder() == standby, DEADLINE):  # noqa: B023
                    raise SystemExit("no takeover")
                if not wait_for(lambda: _settled(replicas[standby], cycles + 1), DEADLINE):  # noqa: B023
                    raise SystemExit("no takeover cycle")
                quiet_calls.append(len(ha.cloudflare_requests()) - before)
                generation += 1
                _restart(ha, replicas, leader, generation)
                leader = standby
                # 2. a rotation during the handover
                standby = next(n for n in replicas if n != leader)
                if not wait_for(lambda: "leader election started" in replicas[standby].log(), DEADLINE):  # noqa: B023
                    raise SystemExit("the restarted replica did not start")
                before = len(ha.cloudflare_requests())
                killed_at = time.time()
                replicas[leader].kill()
                ha.write(API_PATH, f"bench-failover-{run}")
                if not wait_for(lambda: ha.api_key() == f"bench-failover-{run}", DEADLINE):  # noqa: B023
                    raise SystemExit("the rotation did not arrive")
                writes = [r for r in ha.cloudflare_requests()[before:] if r["method"] != "GET"]
                failover.append(min(r["start"] for r in writes) - killed_at)
                rotation_writes.append(len(writes))
                print(
                    f"run {run + 1}: takeover calls with nothing changed {quiet_calls[-1]}, "
                    f"kill -> first write {failover[-1]:.2f} s ({len(writes)} write(s))",
                    flush=True,
                )
                generation += 1
                _restart(ha, replicas, leader, generation)
                leader = standby
        finally:
            ha.stop()
    renew, retry = args.lease * 2 / 3, args.lease * 2 / 15
    print(f"\nlease {args.lease:g} s, renew deadline {renew:g} s, retry period {retry:g} s, {args.runs} run(s)")
    print(f"SIGKILL -> first write of a rotation by the new leader: median {statistics.median(failover):.2f} s, "
          f"max {max(failover):.2f} s (floor: lease - retry = {args.lease - retry:g} s; target < 20 s)")
    print(f"Cloudflare calls at takeover with nothing changed: {quiet_calls} (target 0)")
    print(f"Cloudflare writes for one rotated script during the handover: {rotation_writes} (target 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
