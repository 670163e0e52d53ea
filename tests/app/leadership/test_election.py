"""Leader election against the Kubernetes emulator, in fake time (client-go's semantics)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.app.leadership import LeaderElector
from syncd.devstack.kubernetes import LEASES, KubernetesEmulator, Rule
from tests.app.leadership.helpers import LEASE, TIMINGS, Simulation, lease_api


@pytest.fixture
def kube() -> Iterator[KubernetesEmulator]:
    emulator = KubernetesEmulator(namespace="syncd").start()
    yield emulator
    emulator.stop()


@pytest.fixture
def sim(kube: KubernetesEmulator, tmp_path: Path) -> Simulation:
    return Simulation(kube, tmp_path)


def never_two_leaders(sim: Simulation) -> None:
    assert len(sim.leaders()) <= 1, f"two leaders at t={sim.clock.t}: {sim.leaders()}"


def test_two_electors_one_lease_exactly_one_leads(sim: Simulation, kube: KubernetesEmulator) -> None:
    a, b = sim.add("pod-a"), sim.add("pod-b")
    sim.check = never_two_leaders
    sim.run_until(sim.clock.t + 60)
    assert len(sim.leaders()) == 1
    leader = sim.leaders()[0]
    lease = kube.lease(LEASE)
    assert lease["spec"]["holderIdentity"] == leader
    assert lease["spec"]["leaseDurationSeconds"] == 15
    assert lease["spec"]["leaseTransitions"] == 0
    assert lease["spec"]["renewTime"].endswith("Z") and len(lease["spec"]["renewTime"]) == 27
    assert a.elector.leader_identity == b.elector.leader_identity == leader
    assert len(sim.pods[leader].started) == 1


def test_release_on_stop_hands_over_at_the_next_retry(sim: Simulation, kube: KubernetesEmulator) -> None:
    a = sim.add("pod-a")
    sim.run_until(sim.clock.t + 1)
    assert a.elector.is_leader
    b = sim.add("pod-b")
    sim.run_until(sim.clock.t + 10)
    assert sim.leaders() == ["pod-a"]

    a.elector.release()
    a.alive = False
    released_at = sim.clock.t
    assert kube.lease(LEASE)["spec"].get("holderIdentity") is None
    sim.run_until(released_at + 60, stop_when=lambda: b.elector.is_leader)
    assert b.elector.is_leader
    assert b.started[0] - released_at <= TIMINGS.retry_period
    assert kube.lease(LEASE)["spec"]["leaseTransitions"] == 1


def test_killed_leader_is_replaced_within_lease_duration_plus_retry_period(sim: Simulation) -> None:
    a, b = sim.add("pod-a"), sim.add("pod-b")
    sim.run_until(sim.clock.t + 30)
    leader, follower = (a, b) if a.elector.is_leader else (b, a)
    leader.alive = False  # SIGKILL: no release, no more renewals
    killed_at = sim.clock.t
    sim.run_until(killed_at + 120, stop_when=lambda: follower.elector.is_leader)
    assert follower.elector.is_leader
    assert follower.started[0] - killed_at <= TIMINGS.lease_duration + TIMINGS.retry_period


@pytest.mark.parametrize("mode", ["error", "drop"])
def test_partitioned_leader_stops_writing_before_its_lease_can_be_taken(
    sim: Simulation, kube: KubernetesEmulator, mode: str
) -> None:
    a, b = sim.add("pod-a"), sim.add("pod-b")
    sim.check = never_two_leaders
    sim.run_until(sim.clock.t + 30)
    leader, follower = (a, b) if a.elector.is_leader else (b, a)
    kube.partition(leader.token, mode)
    cut_at = sim.clock.t
    last_valid_until = leader.elector.valid_until()
    sim.run_until(cut_at + 120, stop_when=lambda: follower.elector.is_leader)

    assert follower.elector.is_leader
    took_over = follower.started[0]
    # The old leader's writes ended at its renew deadline, strictly before the takeover ...
    assert last_valid_until <= cut_at + TIMINGS.renew_deadline
    assert last_valid_until < took_over
    assert not leader.elector.can_write(took_over)
    # ... and it noticed: on_stopped_leading ran by then and the elector is done.
    assert leader.stopped and leader.stopped[0] <= took_over
    assert leader.elector.finished


def test_a_conflicting_write_leaves_the_loser_a_follower(sim: Simulation, kube: KubernetesEmulator) -> None:
    a = sim.add("pod-a")
    sim.run_until(sim.clock.t + 1)
    a.elector.release()
    b, c = sim.add("pod-b"), sim.add("pod-c")
    original_replace = b.elector._api.replace

    def replace_after_c_took_it(name: str, record):  # type: ignore[no-untyped-def]
        c.elector.step()  # c read and wrote between b's read and b's write
        return original_replace(name, record)

    b.elector._api.replace = replace_after_c_took_it  # type: ignore[method-assign]
    kube.state.requests.clear()
    b.elector.step()
    assert not b.elector.is_leader and not b.elector.finished
    assert c.elector.is_leader
    assert any(r["method"] == "PUT" and r["status"] == 409 for r in kube.state.requests)
    assert b.elector.leader_identity == "pod-c" or b.elector.leader_identity is None


def test_tokens_never_appear_in_logs(sim: Simulation, kube: KubernetesEmulator, tmp_path: Path) -> None:
    a = sim.add("pod-a")
    with capture_logs() as logs:
        sim.run_until(sim.clock.t + 5)
        kube.partition(a.token, "error")
        sim.run_until(sim.clock.t + 30)
        stranger = LeaderElector(lease_api(kube, tmp_path, "wrong-token-canary"), LEASE, "pod-z", clock=sim.clock)
        stranger.step()
    text = repr(logs)
    assert a.token not in text and "wrong-token-canary" not in text
    assert any(entry.get("status") == 401 for entry in logs)


def test_a_pre_created_empty_lease_is_acquired_without_create(sim: Simulation, kube: KubernetesEmulator) -> None:
    kube.put_object(LEASES, {"metadata": {"name": LEASE}})
    rules = (Rule(("get", "update"), ("leases",), ("coordination.k8s.io",), (LEASE,), kube.namespace),)
    limited = kube.add_token("system:serviceaccount:syncd:syncd", rules)
    directory = sim.tmp / "limited"
    directory.mkdir()
    elector = LeaderElector(lease_api(kube, directory, limited), LEASE, "pod-a", clock=sim.clock)
    elector.step()
    assert elector.is_leader
    assert kube.lease(LEASE)["spec"]["leaseTransitions"] == 1


def test_a_leader_that_sees_another_holder_stops_at_once(sim: Simulation, kube: KubernetesEmulator) -> None:
    a = sim.add("pod-a")
    sim.run_until(sim.clock.t + 1)
    assert a.elector.is_leader
    taken = kube.lease(LEASE)
    taken["spec"]["holderIdentity"] = "intruder"
    kube.store.replace(LEASES, kube.namespace, LEASE, taken)
    a.elector.step()
    assert not a.elector.is_leader and a.elector.finished
    assert a.stopped == [sim.clock.t]
    assert a.elector.leader_identity == "intruder"


def test_a_follower_that_cannot_write_the_expired_lease_retries_at_the_retry_period(
    sim: Simulation, kube: KubernetesEmulator
) -> None:
    kube.put_object(
        LEASES, {"metadata": {"name": LEASE}, "spec": {"holderIdentity": "gone", "leaseDurationSeconds": 15}}
    )
    rules = (Rule(("get",), ("leases",), ("coordination.k8s.io",), (LEASE,), kube.namespace),)
    read_only = kube.add_token("system:serviceaccount:syncd:reader", rules)
    directory = sim.tmp / "reader"
    directory.mkdir()
    elector = LeaderElector(lease_api(kube, directory, read_only), LEASE, "pod-r", TIMINGS, clock=sim.clock)
    delays = []
    for _ in range(12):
        delays.append(elector.step())
        sim.clock.t += delays[-1]
    assert not elector.is_leader
    assert min(delays) > 0
    assert sum(delays) >= 15 + TIMINGS.retry_period  # waited out the lease, then kept a steady pace
    assert delays[-3:] == [TIMINGS.retry_period] * 3
    assert sum(1 for r in kube.state.requests if r["method"] == "PUT" and r["status"] == 403) >= 3
