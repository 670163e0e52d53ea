"""The JSON of /healthz, /readyz and /status, from the parts' state (a fake clock)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syncd.app.service.cycle_outcomes import CycleHistory
from syncd.app.service.leader_role import LeaderRole
from syncd.app.service.running import Lifetime, SettingsInForce
from syncd.app.service.schedule import Schedule
from syncd.app.service.status_document import StatusDocument
from syncd.engine.backoff import ScriptHealth
from syncd.engine.report import Trigger
from syncd.engine.state import MappingStatus
from syncd.model import DestinationKind, Target
from tests.app.service.helpers import settings_of
from tests.app.test_drift_job import Follower
from tests.app.test_service import FakeClock, FakeState, FakeTokens, RecordingScheduler, config_with, report_for

TARGET = Target("0123456789abcdef0123456789abcdef", "w-slow", "tenants")


class Harness:
    def __init__(self, tmp_path: Path, *, follower: bool = False, server: str = "") -> None:
        self.clock = FakeClock()
        self.lifetime = Lifetime()
        self.history = CycleHistory()
        self.abandoned: float | None = None
        self.tokens = FakeTokens()
        self.state = FakeState()
        self.health: list[ScriptHealth] = []
        leader = LeaderRole(
            Follower() if follower else None,
            state=self.state,
            schedule=Schedule(RecordingScheduler()),
            run_cycle=lambda _: None,
            request_exit=lambda _: None,
        )
        tmp_path.mkdir(exist_ok=True)
        text = config_with("alpha", "beta").replace("enabled = false", "enabled = false\n" + server)
        self.document = StatusDocument(
            SettingsInForce(settings_of(tmp_path, text=text)),
            lifetime=self.lifetime,
            history=self.history,
            abandoned_since=lambda: self.abandoned,
            leader=leader,
            state=self.state,
            sync_mode=lambda: {"mode": "interval"},
            tokens=self.tokens,
            script_health=lambda: self.health,
            clock=self.clock,
        )


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    running = Harness(tmp_path)
    running.lifetime.begin(1000.0)
    return running


def test_healthz_counts_the_cycle_age_from_the_start_then_from_the_last_cycle(harness: Harness) -> None:
    limit = 3 * 30 + 0.2  # three intervals and the cycle timeout
    harness.clock.now = 1000.0 + limit - 1
    healthy, body = harness.document.healthz()
    assert healthy and body == {"status": "ok", "last_cycle_age_seconds": pytest.approx(limit - 1), "problems": []}
    harness.clock.now = 1000.0 + limit + 1
    healthy, body = harness.document.healthz()
    assert not healthy and body["problems"] == [f"no cycle finished for {limit + 1:.0f}s (limit {limit:.0f}s)"]
    harness.history.finished(Trigger.INTERVAL, report_for(Trigger.INTERVAL, ["alpha"]), harness.clock.now)
    assert harness.document.healthz()[0]


def test_healthz_reports_an_abandoned_cycle_and_a_stopped_service(harness: Harness) -> None:
    harness.abandoned = 1000.0
    harness.lifetime.end()
    assert harness.document.healthz()[1]["problems"] == [
        "a cycle passed its hard deadline and is still running",
        "stopped",
    ]


def test_a_follower_is_not_unhealthy_for_running_no_cycle_and_is_ready_at_once(tmp_path: Path) -> None:
    follower = Harness(tmp_path, follower=True)
    follower.lifetime.begin(1000.0)
    follower.clock.now = 1000.0 + 3600
    assert follower.document.healthz()[0]
    assert follower.document.readyz() == (True, {"status": "ready", "problems": []})


def test_the_configured_max_cycle_age_wins(tmp_path: Path, harness: Harness) -> None:
    assert harness.document.max_cycle_age() == pytest.approx(90.2)
    configured = Harness(tmp_path / "configured", server="healthz_max_cycle_age_seconds = 5")
    configured.lifetime.begin(1000.0)
    configured.clock.now = 1006.0
    assert configured.document.max_cycle_age() == 5
    assert configured.document.healthz()[1]["problems"] == ["no cycle finished for 6s (limit 5s)"]


def test_readyz_lists_each_reason(harness: Harness) -> None:
    harness.tokens.valid = False
    harness.lifetime.begin_stopping()
    assert harness.document.readyz()[1]["problems"] == [
        "startup reconciliation has not finished",
        "shutting down",
        "no valid Vault token",
    ]
    harness.history.failed(Trigger.STARTUP)
    assert "startup reconciliation has not finished" not in harness.document.readyz()[1]["problems"]


def test_status_shows_mappings_the_last_cycle_scripts_in_backoff_and_leadership(harness: Harness) -> None:
    harness.state.statuses = [
        MappingStatus(
            "alpha", "fp", 3, 990.0, 995.0, 990.0, "Staged", "staged in version 7", in_sync=False, staged_version=7
        )
    ]
    harness.health = [ScriptHealth(TARGET, 2, 60.0, 1060.0, "CloudflareServerError(502)")]
    harness.history.finished(Trigger.TAKEOVER, report_for(Trigger.TAKEOVER, ["alpha", "beta"], failed={"beta"}), 1001.0)
    body = json.loads(json.dumps(harness.document.status()))  # JSON as it is served
    assert body["started_at"] == 1000.0 and body["mappings_configured"] == ["alpha", "beta"]
    assert body["mappings"][0]["staged_version"] == 7
    assert body["mappings"][0]["destination"] == {
        "kind": "worker_script",
        "account_id": "0123456789abcdef0123456789abcdef",
        "name": "w-alpha",
        "dispatch_namespace": None,
    }
    assert body["last_cycle"]["trigger"] == "takeover" and body["last_cycle"]["ok"] is False
    assert [f["mapping"] for f in body["last_cycle"]["failed"]] == ["beta"]
    [script] = body["scripts"]
    assert (script["namespace"], script["script"], script["state"]) == ("tenants", "w-slow", "backed_off")
    assert (script["destination"]["kind"], script["destination"]["name"]) == ("worker_script", "w-slow")
    assert script["next_retry_at_iso"] == "1970-01-01T00:17:40+00:00"
    assert body["sync_mode"] == {"mode": "interval"} and body["leadership"]["role"] == "leader"


def test_status_names_a_secrets_store_in_backoff_as_a_store(harness: Harness) -> None:
    store = Target("0123456789abcdef0123456789abcdef", "default_secrets_store", kind=DestinationKind.SECRETS_STORE)
    harness.health = [ScriptHealth(store, 1, 30.0, 1030.0, "CloudflareServerError(503)")]
    [entry] = json.loads(json.dumps(harness.document.status()))["scripts"]
    assert entry["destination"] == {
        "kind": "secrets_store",
        "account_id": "0123456789abcdef0123456789abcdef",
        "name": "default_secrets_store",
        "dispatch_namespace": None,
    }
