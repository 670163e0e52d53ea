"""Concurrent writers (one per script, across cycles too) and per-script backoff, with fake ports.

The fake Worker counts writes in flight per script while each write runs; writes are held on
barriers and events (never sleeps) to make the overlaps the tests look for actually happen.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from syncd.config import Settings
from syncd.engine.backoff import ScriptBackoff
from syncd.engine.report import Trigger
from syncd.errors import (
    CloudflareRateLimited,
    CloudflareServerError,
    CloudflareTransportError,
    CloudflareValidationError,
    SyncdError,
)
from syncd.model import RemoteSecret, SecretBody, Target
from tests.engine.conftest import CANARY, leaks
from tests.engine.fakes import FakeWorkers, keys_mapping, make_settings, target
from tests.engine.test_reconciler import World, result
from tests.waiting import wait_until

WAIT = 10.0


class CountingWorkers(FakeWorkers):
    """Counts writes in flight, per script and in total; ``hold(target)`` runs inside each write."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.in_flight: Counter[Target] = Counter()
        self.max_per_script: Counter[Target] = Counter()
        self.max_total = 0
        self.hold: Callable[[Target], object] = lambda _: None

    def bulk_update(self, target: Target, changes: Mapping[str, SecretBody | None]) -> None:
        with self._lock:
            self.in_flight[target] += 1
            self.max_per_script[target] = max(self.max_per_script[target], self.in_flight[target])
            self.max_total = max(self.max_total, sum(self.in_flight.values()))
        try:
            self.hold(target)
            super().bulk_update(target, changes)
        finally:
            with self._lock:
                self.in_flight[target] -= 1


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "state.sqlite3")
    w.workers = CountingWorkers()
    yield w
    w.state.close()


def workers_of(world: World) -> CountingWorkers:
    assert isinstance(world.workers, CountingWorkers)
    return world.workers


def one_mapping_per_script(world: World, scripts: list[str], **cloudflare: object) -> Settings:
    for script in scripts:
        world.workers.add_script(script)
        world.source.put(f"app/{script}", {"k": f"{CANARY}-{script}"})
    return make_settings(
        [keys_mapping(f"m-{s}", f"app/{s}", s, {"k": "KEY"}) for s in scripts], cloudflare=cloudflare or None
    )


def test_scripts_are_written_in_parallel_up_to_write_concurrency(world: World) -> None:
    scripts = [f"s{i}" for i in range(4)]
    settings = one_mapping_per_script(world, scripts, write_concurrency=4)
    together = threading.Barrier(4, timeout=WAIT)  # passes only if 4 writes are in flight at once
    workers_of(world).hold = lambda _: together.wait()
    report = world.reconciler(settings).reconcile()
    assert report.ok, [r.error_code for r in report.results]
    assert workers_of(world).max_total == 4
    assert all(world.workers.texts(target(s)) == {"KEY": f"{CANARY}-{s}"} for s in scripts)


def test_a_script_with_several_calls_gets_them_one_after_another(world: World) -> None:
    world.workers.add_script("big")
    world.workers.add_script("small")
    world.source.put("big", {f"k{i}": f"v{i}" for i in range(250)})
    world.source.put("small", {"k": "v"})
    settings = make_settings(
        [
            keys_mapping("big", "big", "big", {f"k{i}": f"N{i}" for i in range(250)}),
            keys_mapping("small", "small", "small", {"k": "K"}),
        ],
        cloudflare={"write_concurrency": 8},
    )
    meet = threading.Barrier(2, timeout=WAIT)  # big's first call and small's call overlap
    first = threading.Event()

    def hold(where: Target) -> None:
        if where == target("small") or not first.is_set():
            first.set() if where == target("big") else None
            meet.wait()

    workers_of(world).hold = hold
    report = world.reconciler(settings).reconcile()
    assert report.ok, [r.error_code for r in report.results]
    big_calls = [c for c in world.workers.writes() if c.target == target("big")]
    assert [len(c.names) for c in big_calls] == [100, 100, 50]  # chunks of 100, in order
    assert workers_of(world).max_per_script == Counter({target("big"): 1, target("small"): 1})
    assert workers_of(world).max_total == 2


def test_a_write_left_in_flight_by_an_ended_cycle_is_never_overlapped(world: World) -> None:
    settings = one_mapping_per_script(world, ["a", "b"])
    release = threading.Event()
    workers_of(world).hold = lambda where: release.wait(WAIT) if where == target("a") else None
    reconciler = world.reconciler(settings)
    try:
        first = reconciler.reconcile(deadline=world.now + 1.0)
        assert result(first, "m-a").error_code == "CycleTimeout" and first.timed_out
        assert result(first, "m-b").in_sync

        second = reconciler.reconcile(trigger=Trigger.NOTIFICATION, deadline=world.now + 1.0)
        assert result(second, "m-a").error_code == "CycleTimeout"
        assert "still in flight" in (result(second, "m-a").error or "")
        assert workers_of(world).in_flight[target("a")] == 1  # still the first cycle's write
    finally:
        release.set()
    assert wait_until(lambda: workers_of(world).in_flight[target("a")] == 0, WAIT)
    assert reconciler.reconcile().ok
    assert workers_of(world).max_per_script[target("a")] == 1
    assert world.workers.texts(target("a")) == {"KEY": f"{CANARY}-a"}


def backoff_changes(logs: list[MutableMapping[str, Any]]) -> list[object]:
    return [entry["change"] for entry in logs if entry["event"] == "script.backoff"]


def test_a_failing_script_backs_off_exponentially_capped_and_recovers_with_one_log_line_per_change(
    world: World,
) -> None:
    settings = one_mapping_per_script(world, ["a", "b"], script_backoff_seconds=30, script_backoff_max_seconds=100)
    b = target("b")
    world.workers.refuse[b] = CloudflareTransportError("Cloudflare PATCH .../secrets-bulk: timed out (ReadTimeout)")
    reconciler = world.reconciler(settings)
    with capture_logs() as logs:
        first = reconciler.reconcile()
        assert result(first, "m-a").in_sync and result(first, "m-b").error_code == "CloudflareTransportError"
        assert [(h.target, h.consecutive_failures, h.backoff_seconds) for h in reconciler.script_health()] == [
            (b, 1, 30.0)
        ]

        world.reset_counts()
        world.now += 10
        skipped = reconciler.reconcile()
        assert result(skipped, "m-b").error_code == "ScriptBackedOff"
        assert "next retry at" in (result(skipped, "m-b").error or "")
        assert world.workers.writes() == []
        assert backoff_changes(logs) == ["entered"]  # not one line per cycle

        backoffs = []
        for _ in range(3):  # retried on its own schedule although nothing changed in Vault: fails again
            world.now = reconciler.script_health()[0].next_retry_at  # the jittered backoff has passed
            world.reset_counts()
            again = reconciler.reconcile()
            assert [c.target for c in world.workers.writes()] == [b]
            assert result(again, "m-b").error_code == "CloudflareTransportError"
            backoffs.append(reconciler.script_health()[0].backoff_seconds)
        assert backoffs == [60.0, 100.0, 100.0]  # doubling, capped
        assert reconciler.script_health()[0].consecutive_failures == 4

        del world.workers.refuse[b]
        world.now += 100
        recovered = reconciler.reconcile()
        assert recovered.ok
        assert reconciler.script_health() == []
    assert backoff_changes(logs) == ["entered", "extended", "extended", "extended", "recovered"]
    assert not leaks(repr(logs))
    assert world.workers.texts(b) == {"KEY": f"{CANARY}-b"}


@pytest.mark.parametrize(
    "error",
    [
        CloudflareValidationError("bad binding", status=400, code=10053),
        CloudflareRateLimited("rate limited", status=429, retry_after=3.0),
    ],
)
def test_a_refusal_or_a_rate_limit_is_not_a_script_failure(world: World, error: SyncdError) -> None:
    settings = one_mapping_per_script(world, ["a"])
    world.workers.refuse[target("a")] = error
    reconciler = world.reconciler(settings)
    assert result(reconciler.reconcile(), "m-a").failed
    assert reconciler.script_health() == []


def test_backoff_jitter_adds_up_to_a_fifth_of_the_initial_backoff() -> None:
    """``syncd.retrying``'s rule: 30 s nominal, plus up to 6 s of jitter, never past the maximum."""
    now = [0.0]
    where = target("x")
    for draw, expected in ((0.0, 30.0), (0.5, 33.0), (1.0, 36.0)):
        backoff = ScriptBackoff(30, 600, clock=lambda: now[0], rng=lambda d=draw: d)  # type: ignore[misc]
        backoff.record(where, CloudflareServerError("Cloudflare PATCH: HTTP 502", status=502))
        (health,) = backoff.snapshot()
        assert health.next_retry_at == pytest.approx(expected)
        assert health.backoff_seconds == 30.0
        assert backoff.blocked(where) is not None
        now[0] = health.next_retry_at
        assert backoff.blocked(where) is None  # due: the next cycle writes to it again
        now[0] = 0.0
    capped = ScriptBackoff(30, 40, clock=lambda: now[0], rng=lambda: 1.0)
    for _ in range(3):
        capped.record(where, CloudflareServerError("Cloudflare PATCH: HTTP 502", status=502))
    (health,) = capped.snapshot()
    assert (health.backoff_seconds, health.next_retry_at) == (40.0, 40.0)


def test_new_scripts_are_listed_in_parallel_too(world: World) -> None:
    scripts = [f"s{i}" for i in range(4)]
    settings = one_mapping_per_script(world, scripts, write_concurrency=4)
    together = threading.Barrier(4, timeout=WAIT)  # passes only if 4 lists are in flight at once
    original = world.workers.list_secrets

    def list_secrets(where: Target) -> Sequence[RemoteSecret]:
        together.wait()
        return original(where)

    world.workers.list_secrets = list_secrets  # type: ignore[method-assign,assignment]
    report = world.reconciler(settings).reconcile()
    assert report.ok, [r.error_code for r in report.results]
    assert sorted(c.target.script for c in world.workers.calls if c.operation == "list") == scripts
