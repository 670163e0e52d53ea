"""The elector's own thread in real time with short timings: start, hand over on stop, partition.

Deadline waits only; no durations asserted (the fake-time tests pin the schedule).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from syncd.app.leadership import ElectionTimings, LeaderElector, LeaderMetrics
from syncd.devstack.kubernetes import KubernetesEmulator
from tests.app.leadership.helpers import LEASE, lease_api
from tests.waiting import wait_until

# Generous for a loaded CI machine: a renewal has 4 s to succeed before leadership is lost.
FAST = ElectionTimings(lease_duration=6.0, renew_deadline=4.0, retry_period=0.3)


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    assert wait_until(condition, seconds), "condition not reached before the deadline"


@pytest.fixture
def kube() -> Iterator[KubernetesEmulator]:
    emulator = KubernetesEmulator(namespace="syncd").start()
    yield emulator
    emulator.stop()


class Replica:
    def __init__(self, kube: KubernetesEmulator, tmp: Path, name: str) -> None:
        self.token = kube.add_token(f"system:serviceaccount:syncd:{name}")
        directory = tmp / name
        directory.mkdir()
        self.registry = CollectorRegistry()
        self.lost = threading.Event()
        self.elector = LeaderElector(
            lease_api(kube, directory, self.token, timeout=1.0),
            LEASE,
            name,
            FAST,
            on_stopped_leading=self.lost.set,
            metrics=LeaderMetrics(self.registry),
        )

    def metric(self, name: str) -> float | None:
        return self.registry.get_sample_value(name)


def test_stop_releases_and_the_other_replica_leads(kube: KubernetesEmulator, tmp_path: Path) -> None:
    a, b = Replica(kube, tmp_path, "pod-a"), Replica(kube, tmp_path, "pod-b")
    a.elector.start()
    wait_for(lambda: a.elector.is_leader)
    b.elector.start()
    wait_for(lambda: b.elector.leader_identity == "pod-a")
    assert a.metric("syncd_leader") == 1.0 and a.metric("syncd_leader_transitions_total") == 1.0
    assert b.metric("syncd_leader") == 0.0

    a.elector.stop()
    assert not a.elector.is_leader and a.metric("syncd_leader") == 0.0
    assert not a.lost.is_set()  # a clean stop is not a loss
    wait_for(lambda: b.elector.is_leader)
    assert kube.lease(LEASE)["spec"]["holderIdentity"] == "pod-b"
    b.elector.stop()


def test_a_hung_api_ends_leadership_by_the_clock_before_the_other_can_lead(
    kube: KubernetesEmulator, tmp_path: Path
) -> None:
    a, b = Replica(kube, tmp_path, "pod-a"), Replica(kube, tmp_path, "pod-b")
    a.elector.start()
    wait_for(lambda: a.elector.is_leader)
    b.elector.start()
    wait_for(lambda: b.elector.leader_identity == "pod-a")
    kube.partition(a.token, "hang")
    wait_for(lambda: b.elector.is_leader)
    took_over = time.monotonic()
    assert a.elector.valid_until() < took_over or not a.elector.is_leader
    assert not a.elector.can_write(took_over)
    wait_for(a.lost.is_set)
    kube.heal()
    for replica in (a, b):
        replica.elector.stop()
