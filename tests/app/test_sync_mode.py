"""Interval and backstop mode: which one is in force and why, the switch when a notification source
connects, drops or is never configured, the slices of the backstop sweep, /status and the metric.

The service runs with a recording scheduler and fake parts (tests run its jobs when they want); the
audit listener is real, and a source "connects" by a real TCP connection to it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.app.service.daemon import RECONCILE_JOB, STARTUP_JOB, Service, ServiceParts
from syncd.app.service.metrics import Metrics
from syncd.app.service.sweep import BACKSTOP, INTERVAL, SweepSlicer, SyncModeTracker, secrets_in_order, slice_count
from syncd.config import Settings, load_config, parse_config
from syncd.errors import ConfigError
from tests.app.test_service import (
    BASE_CONFIG,
    FakeClock,
    FakeReconciler,
    FakeState,
    FakeTokens,
    RecordingScheduler,
    config_with,
    report_for,
)
from tests.waiting import wait_until

WAIT = 10.0
NAMES = [f"m{n:02d}" for n in range(23)]
AUDIT = '\n[notifications]\naudit_listen = "127.0.0.1:0"\n'


# -- the mode, pure --------------------------------------------------------------------------------


def test_without_a_source_the_mode_is_interval_for_good() -> None:
    tracker = SyncModeTracker({}, now=5.0)
    assert (tracker.mode, tracker.reason, tracker.since) == (INTERVAL, "no notification source configured", 5.0)
    assert tracker.connections("audit", 3, now=6.0) is None
    assert tracker.mode == INTERVAL


def test_audit_is_connected_with_one_connection_and_drops_back_to_interval() -> None:
    tracker = SyncModeTracker({"audit": 1}, now=0.0)
    assert (tracker.mode, tracker.reason) == (INTERVAL, "audit: no connection")

    change = tracker.connections("audit", 1, now=1.0)
    assert change is not None
    assert (change.mode, change.previous, change.reason) == (BACKSTOP, INTERVAL, "audit: 1 connection")
    assert tracker.connections("audit", 2, now=2.0) is None  # a second Vault node: still backstop
    assert (tracker.reason, tracker.since) == ("audit: 2 connections", 1.0)

    change = tracker.connections("audit", 0, now=3.0)
    assert change is not None and (change.mode, change.reason, change.since) == (INTERVAL, "audit: no connection", 3.0)


def test_events_need_every_subscription_open() -> None:
    tracker = SyncModeTracker({"events": 2}, now=0.0)
    assert tracker.connections("events", 1, now=1.0) is None
    assert tracker.reason == "events: 1 of 2 subscriptions open"
    change = tracker.connections("events", 2, now=2.0)
    assert change is not None and change.mode == BACKSTOP


def test_one_connected_source_of_two_is_enough_and_a_source_that_could_not_start_says_so() -> None:
    tracker = SyncModeTracker({"audit": 1, "events": 2}, now=0.0)
    assert tracker.failed("audit", now=1.0) is None
    assert tracker.reason == "audit: could not start; events: 0 of 2 subscriptions open"
    assert tracker.connections("events", 2, now=2.0) is not None
    assert (tracker.mode, tracker.reason) == (BACKSTOP, "events: 2 of 2 subscriptions open")
    assert tracker.connections("audit", 1, now=3.0) is None  # failed stays failed
    assert tracker.snapshot()["sources"]["audit"]["connected"] is False


# -- the slices, pure ------------------------------------------------------------------------------


def _settings_with(names: list[str], extra: str = "", *, shared: int = 0) -> Settings:
    """Mappings m00..; the first ``shared`` extra mappings read secret m00 as well."""
    text = config_with(*names, extra=extra)
    for n in range(shared):
        text += f'\n[[mapping]]\nname = "s{n}"\nvault = {{ mount = "secret", path = "m00" }}\n'
        text += f'target = {{ script = "w-s{n}" }}\nsecret_text = {{ keys = {{ k = "K" }} }}\n'
    return parse_config(text, "syncd.toml")


def test_k_ticks_cover_every_secret_exactly_once_in_flat_slices_keeping_a_secrets_mappings_together() -> None:
    settings = _settings_with(NAMES, "backstop_interval_seconds = 300", shared=2)
    assert slice_count(settings) == 10
    slicer = SweepSlicer()
    for _round in range(3):
        slices = [slicer.next_slice(settings)[0] for _ in range(10)]
        seen = Counter(name for chosen in slices for name in chosen)
        assert set(seen) == {*NAMES, "s0", "s1"} and set(seen.values()) == {1}
        secrets = [len({name.replace("s0", "m00").replace("s1", "m00") for name in chosen}) for chosen in slices]
        assert max(secrets) - min(secrets) <= 1  # 23 secrets over 10 ticks: 2 or 3 each
        assert any({"m00", "s0", "s1"} <= set(chosen) for chosen in slices)


def test_the_order_is_stable_by_mount_and_path() -> None:
    settings = _settings_with(["b", "a", "c"])
    assert [str(ref) for ref, _ in secrets_in_order(settings)] == ["secret/a", "secret/b", "secret/c"]


def test_backstop_interval_is_validated_against_the_interval() -> None:
    text = BASE_CONFIG.replace("interval_seconds = 30", "interval_seconds = 30\nbackstop_interval_seconds = 10")
    with pytest.raises(ConfigError) as refused:
        parse_config(
            text + "\n[[mapping]]\nname='a'\nvault={mount='secret', path='a'}\ntarget={script='w'}\n"
            "secret_text={keys={k='K'}}\n",
            "syncd.toml",
        )
    assert "backstop_interval_seconds (10) must be at least interval_seconds (30)" in str(refused.value)
    with pytest.raises(ConfigError):
        parse_config(text.replace("= 10", "= 0"), "syncd.toml")


# -- the service ----------------------------------------------------------------------------------


INTERVAL_SECONDS = 30.0  # BASE_CONFIG's

# What Vault sends when the device is enabled (a "request" entry for sys/audit/test).
AUDIT_PROBE = (
    json.dumps(
        {
            "time": "2026-01-01T00:00:00Z",
            "type": "request",
            "request": {"operation": "update", "path": "sys/audit/test"},
        }
    ).encode()
    + b"\n"
)


class Harness:
    def __init__(self, tmp_path: Path, extra: str = "", notifications: str = AUDIT) -> None:
        path = tmp_path / "syncd.toml"
        text = config_with(*NAMES, extra="backstop_interval_seconds = 300\n" + extra)
        path.write_text(text.replace("[server]", notifications + "\n[server]"))
        self.reconciler = FakeReconciler(list(NAMES))
        self.scheduler = RecordingScheduler()
        self.metrics = Metrics()
        self.clock = FakeClock()
        parts = ServiceParts(self.reconciler, FakeState(), self.metrics, token_manager=FakeTokens())
        self.service = Service(load_config(path), path, parts, clock=self.clock, scheduler=self.scheduler)

    def tick(self) -> dict[str, object]:
        self.scheduler.run(RECONCILE_JOB)
        return self.reconciler.calls[-1]

    def run_queued(self) -> list[dict[str, object]]:
        before = len(self.reconciler.calls)
        for job_id in self.scheduler.manual_jobs():
            self.scheduler.run(job_id)
        return self.reconciler.calls[before:]

    def gauge(self, mode: str) -> float | None:
        return self.metrics.registry.get_sample_value("syncd_sync_mode", {"mode": mode})

    def connect(self) -> socket.socket:
        listener = self.service.audit_listener
        assert listener is not None
        conn = socket.create_connection(("127.0.0.1", listener.port), timeout=WAIT)
        conn.sendall(AUDIT_PROBE)  # counts as Vault only once it sent an audit entry
        self._switched_to(BACKSTOP)
        self.clock.now += INTERVAL_SECONDS  # time passes: the next change may sweep at once again
        return conn

    def drop(self, conn: socket.socket) -> None:
        conn.close()
        self._switched_to(INTERVAL)
        self.clock.now += INTERVAL_SECONDS

    def _switched_to(self, mode: str) -> None:
        """The mode is in force and the sweep its switch asks for is queued (just after, off the lock)."""
        assert wait_until(lambda: self.service.sync_mode()["mode"] == mode and bool(self.scheduler.manual_jobs()), WAIT)


def started_harness(tmp_path: Path) -> Iterator[Harness]:
    """A started service with its start-up cycle run, shut down after (the ``harness`` fixture)."""
    running = Harness(tmp_path)
    running.service.start()
    running.scheduler.run(STARTUP_JOB)
    yield running
    running.service.shutdown()


harness = pytest.fixture(started_harness, name="harness")


def test_without_notifications_every_tick_is_a_full_sweep_as_before(tmp_path: Path) -> None:
    harness = Harness(tmp_path, notifications="")
    harness.service.start()
    try:
        for _ in range(3):
            assert harness.tick() == {"trigger": "interval", "only": None, "deadline": pytest.approx(1000.2)}
        mode = harness.service.sync_mode()
        assert (mode["mode"], mode["reason"]) == (INTERVAL, "no notification source configured")
        assert (harness.gauge(INTERVAL), harness.gauge(BACKSTOP)) == (1.0, 0.0)
        assert harness.scheduler.manual_jobs() == []  # no extra sweep
    finally:
        harness.service.shutdown()


def test_a_configured_source_that_never_connects_keeps_interval_mode(harness: Harness) -> None:
    assert harness.tick()["only"] is None
    mode = harness.service.sync_mode()
    assert (mode["mode"], mode["reason"]) == (INTERVAL, "audit: no connection")


def test_a_connection_switches_to_backstop_sweeps_once_then_ticks_take_slices(harness: Harness) -> None:
    harness.clock.now = 1234.0
    conn = harness.connect()
    try:
        mode = harness.service.sync_mode()
        assert (mode["mode"], mode["reason"], mode["since"]) == (BACKSTOP, "audit: 1 connection", 1234.0)
        assert (harness.gauge(INTERVAL), harness.gauge(BACKSTOP)) == (0.0, 1.0)
        # The switch sweeps everything once (writes made while nothing was connected).
        assert [(c["trigger"], c["only"]) for c in harness.run_queued()] == [("interval", None)]
        # Then each tick reconciles the next tenth of the secrets; ten ticks cover each exactly once.
        calls = [harness.tick() for _ in range(10)]
        assert {c["trigger"] for c in calls} == {"backstop"}
        seen = Counter(name for c in calls for name in c["only"])  # type: ignore[attr-defined]
        assert set(seen) == set(NAMES) and set(seen.values()) == {1}
        assert harness.service.sync_mode()["slices"] == 10
    finally:
        harness.drop(conn)


def test_a_drop_sweeps_at_once_and_returns_to_interval_so_a_write_while_down_arrives_within_one_interval(
    harness: Harness,
) -> None:
    conn = harness.connect()
    harness.run_queued()
    harness.tick()
    harness.drop(conn)
    mode = harness.service.sync_mode()
    assert (mode["mode"], mode["reason"]) == (INTERVAL, "audit: no connection")
    assert (harness.gauge(INTERVAL), harness.gauge(BACKSTOP)) == (1.0, 0.0)
    # At once: a full sweep (writes whose notifications died with the connection).
    assert [(c["trigger"], c["only"]) for c in harness.run_queued()] == [("interval", None)]
    # A write made now is seen by the very next tick, one interval_seconds away: a full sweep.
    assert harness.tick()["only"] is None
    # Reconnecting goes back to backstop mode, with one sweep for what was written meanwhile.
    again = harness.connect()
    try:
        assert [(c["trigger"], c["only"]) for c in harness.run_queued()] == [("interval", None)]
        assert harness.tick()["trigger"] == "backstop"
    finally:
        harness.drop(again)


def test_in_backstop_mode_a_failed_mapping_is_retried_at_every_tick(harness: Harness) -> None:
    conn = harness.connect()
    try:
        harness.run_queued()
        original = harness.reconciler.reconcile

        def failing_m05(**kwargs: object) -> object:
            report = original(**kwargs)  # type: ignore[arg-type]
            names = [r.mapping for r in report.results]
            return report_for(str(kwargs["trigger"]), names, failed={"m05"} & set(names))

        harness.reconciler.reconcile = failing_m05  # type: ignore[assignment,method-assign]
        harness.service.trigger("m05", source="notification")
        harness.run_queued()
        harness.reconciler.reconcile = original  # type: ignore[method-assign]
        first, second = harness.tick(), harness.tick()
        assert "m05" in first["only"] and "m05" not in second["only"]  # type: ignore[operator]
    finally:
        harness.drop(conn)


def test_status_shows_the_mode_its_reason_and_the_sweep_position(harness: Harness) -> None:
    conn = harness.connect()
    try:
        body = harness.service.status()
        mode = body["sync_mode"]
        assert mode["mode"] == BACKSTOP and mode["reason"] == "audit: 1 connection"
        assert mode["sources"] == {"audit": {"connections": 1, "needed": 1, "connected": True}}
        assert (mode["interval_seconds"], mode["backstop_interval_seconds"]) == (30, 300)
        assert (mode["slices"], mode["secrets"]) == (10, len(NAMES))
        json.dumps(body)
        text = harness.metrics.render()[0].decode()
        assert 'syncd_sync_mode{mode="backstop"} 1.0' in text and 'syncd_sync_mode{mode="interval"} 0.0' in text
    finally:
        harness.drop(conn)


def test_notifications_during_a_running_cycle_coalesce_into_exactly_one_follow_up(harness: Harness) -> None:
    harness.reconciler.block = threading.Event()
    harness.reconciler.entered.clear()
    harness.service.trigger("m01", source="notification")
    [first_job] = harness.scheduler.manual_jobs()
    runner = threading.Thread(target=harness.scheduler.run, args=[first_job])
    runner.start()
    assert harness.reconciler.entered.wait(WAIT)  # the first write started a cycle at once
    for name in ("m02", "m03", "m01", "m02"):
        status, body = harness.service.trigger(name, source="notification")
        assert status == 202 and body["coalesced"] is True
    assert harness.scheduler.manual_jobs() == []  # nothing new queued: the running drain follows up
    harness.reconciler.block.set()
    runner.join(WAIT)
    notification_calls = [c for c in harness.reconciler.calls if c["trigger"] == "notification"]
    assert [c["only"] for c in notification_calls] == [["m01"], ["m01", "m02", "m03"]]


def test_an_audit_listener_that_cannot_start_keeps_interval_mode_and_says_why(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        harness = Harness(tmp_path, notifications=f'\n[notifications]\naudit_listen = "127.0.0.1:{port}"\n')
        harness.service.start()
        try:
            mode = harness.service.sync_mode()
            assert (mode["mode"], mode["reason"]) == (INTERVAL, "audit: could not start")
            assert harness.tick()["only"] is None
            assert harness.scheduler.manual_jobs() == []  # no change of mode, no extra sweep
        finally:
            harness.service.shutdown()


def test_a_reloaded_backstop_interval_changes_the_slices_at_the_next_tick(harness: Harness) -> None:
    conn = harness.connect()
    try:
        harness.run_queued()
        assert harness.service.sync_mode()["slices"] == 10
        path = harness.service.config_path
        path.write_text(path.read_text().replace("backstop_interval_seconds = 300", "backstop_interval_seconds = 60"))
        assert harness.service.reload()
        assert harness.service.sync_mode()["slices"] == 2
        calls = [harness.tick(), harness.tick()]
        seen = Counter(name for c in calls for name in c["only"])  # type: ignore[attr-defined]
        assert set(seen) == set(NAMES) and set(seen.values()) == {1}
    finally:
        harness.drop(conn)


def test_an_interval_longer_than_the_default_backstop_needs_no_backstop_setting() -> None:
    text = BASE_CONFIG.replace("interval_seconds = 30", "interval_seconds = 3600")
    settings = parse_config(
        text + "\n[[mapping]]\nname='a'\nvault={mount='secret', path='a'}\ntarget={script='w'}\n"
        "secret_text={keys={k='K'}}\n",
        "syncd.toml",
    )
    assert settings.sync.backstop_seconds == 3600
    assert parse_config(BASE_CONFIG).sync.backstop_seconds == 300
