"""Two ``syncd run`` replicas behind one Lease (issue 12), end to end over real HTTP.

The Cloudflare emulator's request log names the writing replica (syncd's User-Agent), so "exactly
one writes" and "two writers never overlap" are read off what Cloudflare received. Timings: a
9 s Lease (renew deadline 6 s, retry 1.2 s), generous deadlines for a loaded machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ha_stack import API_PATH, QUIET_SCRIPT, HaStack
from tests.waiting import wait_until as wait_for

ROTATED = "canary-ha-rotated-3f7a"
AFTER_PARTITION = "canary-ha-after-cut-8c21"
WAIT = 90.0


@pytest.fixture
def ha(tmp_path: Path) -> Iterator[HaStack]:
    stack = HaStack(tmp_path, lease_seconds=9.0, interval_seconds=2.0)
    try:
        yield stack
    finally:
        stack.stop()


def _leader_and_follower(ha: HaStack) -> tuple[str, str]:
    assert wait_for(lambda: ha.holder() in ("a", "b"), WAIT), "nobody took the Lease"
    leader = ha.holder()
    assert leader is not None
    return leader, "b" if leader == "a" else "a"


@pytest.mark.timeout(300)
def test_exactly_one_replica_writes_and_a_killed_leader_is_replaced_without_losing_a_rotation(ha: HaStack) -> None:
    replicas = {"a": ha.start("a"), "b": ha.start("b")}
    leader, follower = _leader_and_follower(ha)
    assert wait_for(lambda: ha.api_key() == "canary-ha-initial-5b1c", WAIT), "the leader did not sync"
    # The kubernetes state records a cycle's confirmed writes when the cycle ends: killed before
    # that, the next leader would repeat them once (invariant 2 allows it; this test is about more).
    assert wait_for(lambda: '"failed": 0' in replicas[leader].log(), WAIT), "no clean cycle"
    writers = {ha.writer(r) for r in ha.writes()}
    assert writers == {leader}, f"writes came from {sorted(writers)}"

    before = len(ha.cloudflare_requests())
    replicas[leader].kill()
    ha.write(API_PATH, ROTATED)  # a rotation made during the handover
    assert wait_for(lambda: ha.holder() == follower, WAIT), "the follower did not take over"
    assert wait_for(lambda: ha.api_key() == ROTATED, WAIT), "the rotation made during the handover was lost"
    # The emulator logs a request once its answer is sent, a moment after the value is visible.
    assert wait_for(lambda: any(r["method"] != "GET" for r in ha.cloudflare_requests()[before:]), WAIT)

    after = ha.cloudflare_requests()[before:]
    assert {ha.writer(r) for r in after} <= {follower}
    writes = [r for r in after if r["method"] != "GET"]
    assert len(writes) == 1 and "/app-worker/" in writes[0]["path"]  # one call for the rotated script
    assert not [r for r in after if f"/{QUIET_SCRIPT}/" in r["path"]]  # in sync: no call at all
    assert replicas[follower].stop() == 0
    for name in ("a", "b"):
        assert ROTATED not in replicas[name].log() and "canary-ha-initial" not in replicas[name].log()


@pytest.mark.timeout(300)
def test_a_leader_cut_off_from_the_api_stops_writing_before_another_can_lead(ha: HaStack) -> None:
    replicas = {"a": ha.start("a"), "b": ha.start("b")}
    leader, follower = _leader_and_follower(ha)
    assert wait_for(lambda: ha.api_key() == "canary-ha-initial-5b1c", WAIT)

    ha.stack.kubernetes.partition(ha.tokens[leader], "error")  # it can neither renew nor write state
    assert wait_for(lambda: ha.holder() == follower, WAIT), "the follower did not take over"
    # The cut-off leader gives up by itself (exit 1, so Kubernetes would restart it as a follower).
    assert wait_for(lambda: replicas[leader].process.poll() is not None, WAIT)
    assert replicas[leader].process.returncode == 1
    assert "leadership lost" in replicas[leader].log()
    ha.stack.kubernetes.heal()

    ha.write(API_PATH, AFTER_PARTITION)
    assert wait_for(lambda: ha.api_key() == AFTER_PARTITION, WAIT), "the new leader did not write"
    # The emulator logs a request once its answer is sent, a moment after the value is visible.
    assert wait_for(lambda: any(ha.writer(r) == follower for r in ha.writes()), WAIT)
    old = [r for r in ha.writes() if ha.writer(r) == leader]
    new = [r for r in ha.writes() if ha.writer(r) == follower]
    assert old and new
    assert max(r["end"] for r in old) < min(r["start"] for r in new), "two writers overlapped"
    assert replicas[follower].stop() == 0


@pytest.mark.timeout(300)
def test_a_follower_serves_metrics_health_and_status_naming_the_leader(tmp_path: Path) -> None:
    ha = HaStack(tmp_path, lease_seconds=9.0, interval_seconds=2.0, server=True)
    try:
        replicas = {"a": ha.start("a"), "b": ha.start("b")}
        leader, follower = _leader_and_follower(ha)
        assert wait_for(lambda: replicas[follower].url() is not None, WAIT)
        url = replicas[follower].url()
        assert wait_for(lambda: _get(f"{url}/status")[1].get("leadership", {}).get("leader") == leader, WAIT)
        status = _get(f"{url}/status")[1]["leadership"]
        assert status == {"enabled": True, "identity": follower, "role": "follower", "leader": leader}
        assert _get(f"{url}/healthz")[0] == 200
        assert _get(f"{url}/readyz")[0] == 200
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert "\nsyncd_leader 0.0" in metrics
        leader_url = replicas[leader].url()
        assert leader_url is not None and "\nsyncd_leader 1.0" in httpx.get(f"{leader_url}/metrics", timeout=10).text
    finally:
        ha.stop()


def _get(url: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(url, timeout=10)
    return response.status_code, dict(response.json())
