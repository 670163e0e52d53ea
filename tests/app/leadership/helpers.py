"""Electors against the Kubernetes emulator under one fake clock, stepped by a tiny event loop.

Each elector's ``step()`` returns when it wants to run again; ``Simulation.run_until`` always runs
the earliest due one, setting the shared fake clock to its time first. Real HTTP, fake time: the
schedule is exact and the tests are deterministic on any machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syncd.app.leadership import ElectionClock, ElectionTimings, LeaderElector, LeaseApi
from syncd.clients.kubernetes import KubernetesApi, KubernetesEndpoint, TokenFile
from syncd.devstack.kubernetes import KubernetesEmulator

LEASE = "syncd-leader"
TIMINGS = ElectionTimings(lease_duration=15.0, renew_deadline=10.0, retry_period=2.0)


class FakeClock(ElectionClock):
    def __init__(self) -> None:
        self.t = 1000.0
        self._epoch = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self.t - 1000.0)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        raise AssertionError("stepped electors never wait")


def lease_api(kube: KubernetesEmulator, token_dir: Path, token: str, timeout: float = 5.0) -> LeaseApi:
    token_file = token_dir / "token"
    token_file.write_text(token)
    endpoint = KubernetesEndpoint(kube.url, kube.namespace, TokenFile(token_file), timeout_seconds=timeout)
    return LeaseApi(KubernetesApi(endpoint))


@dataclass
class Pod:
    elector: LeaderElector
    token: str
    next_at: float = 0.0
    alive: bool = True
    started: list[float] = field(default_factory=list)
    stopped: list[float] = field(default_factory=list)


@dataclass
class Simulation:
    kube: KubernetesEmulator
    tmp: Path
    clock: FakeClock = field(default_factory=FakeClock)
    pods: dict[str, Pod] = field(default_factory=dict)
    # Called after every step with the time: tests assert invariants there.
    check: Callable[[Simulation], None] | None = None

    def add(self, name: str, timings: ElectionTimings = TIMINGS) -> Pod:
        token = self.kube.add_token(f"system:serviceaccount:{self.kube.namespace}:{name}")
        directory = self.tmp / name
        directory.mkdir()
        started: list[float] = []
        stopped: list[float] = []
        elector = LeaderElector(
            lease_api(self.kube, directory, token),
            LEASE,
            name,
            timings,
            clock=self.clock,
            on_started_leading=lambda: started.append(self.clock.t),
            on_stopped_leading=lambda: stopped.append(self.clock.t),
        )
        pod = Pod(elector, token, next_at=self.clock.t, started=started, stopped=stopped)
        self.pods[name] = pod
        return pod

    def run_until(self, until: float, stop_when: Callable[[], bool] = lambda: False) -> None:
        while True:
            due = [pod for pod in self.pods.values() if pod.alive and not pod.elector.finished]
            if not due:
                return
            pod = min(due, key=lambda p: p.next_at)
            if pod.next_at > until:
                self.clock.t = until
                return
            self.clock.t = max(self.clock.t, pod.next_at)
            pod.next_at = self.clock.t + pod.elector.step()
            if self.check is not None:
                self.check(self)
            if stop_when():
                return

    def leaders(self) -> list[str]:
        return [name for name, pod in self.pods.items() if pod.alive and pod.elector.is_leader]
