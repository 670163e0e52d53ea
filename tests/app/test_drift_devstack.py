"""Gradual deployments (``on_undeployed``) and drift (hand edits) over HTTP against the devstack.

The reconciler and the ``DriftChecker`` run against the Vault and Cloudflare emulators; hand edits,
code uploads and deployments are made as other people would, through the emulator's admin API
(``/__devstack``). A drift check is forced (``check_now``) instead of waiting for its interval.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.app.cli.commands import format_once
from syncd.app.service.drift_checks import DriftChecker
from syncd.app.service.metrics import Metrics
from syncd.clients.vault import VaultReader, build_hvac_client
from syncd.clients.worker_versions import WorkerVersionsClient
from syncd.config import Settings
from syncd.devstack.stack import Devstack
from syncd.engine.reconciler import Reconciler
from syncd.engine.report import Trigger
from syncd.model import Target
from tests.engine.conftest import CANARY, leaks
from tests.engine.fakes import keys_mapping
from tests.engine.test_reconciler_devstack import Stack

SCRIPTS = ("edge", "other")


class Counting:
    def __init__(self) -> None:
        self.detected: list[str] = []
        self.corrected: list[str] = []

    def count_drift(self, mapping: str, *, corrected: bool) -> None:
        (self.corrected if corrected else self.detected).append(mapping)


class Rig:
    """A stack, one reconciler with the versions client, and a drift checker over the same pacer."""

    def __init__(self, stack: Stack, settings: Settings) -> None:
        self.stack = stack
        self.settings = settings
        self.versions = WorkerVersionsClient(stack.cloudflare)
        hvac_client = build_hvac_client(
            stack.devstack.vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=4
        )
        hvac_client.token = stack.devstack.vault.root_token
        self.reconciler = Reconciler(
            settings, VaultReader(hvac_client, retry_attempts=1), stack.cloudflare, stack.state, versions=self.versions
        )
        self.requested: list[set[str]] = []
        self.metrics = Counting()
        self.checker = DriftChecker(
            settings,
            self.versions,
            stack.state,
            stack.cloudflare._pacer,
            request_cycle=self.requested.append,
            metrics=self.metrics,
            clock=time.time,
        )

    def cycle(self, only: set[str] | None = None) -> Any:
        report = self.reconciler.reconcile(
            trigger=Trigger.DRIFT if only else Trigger.INTERVAL,
            only_mappings=only,
            corrections=self.checker.corrections(),
        )
        self.checker.note_cycle(report)
        return report

    def correct(self) -> Any:
        """Run the cycle the checker asked for (what ``Service.request_cycle`` queues)."""
        assert self.requested, "the drift check asked for no cycle"
        only = set().union(*self.requested)
        self.requested.clear()
        return self.cycle(only)

    # -- the admin API ---------------------------------------------------------------------------
    def admin(self, script: str, suffix: str = "") -> str:
        cf = self.stack.devstack.cloudflare
        return f"{cf.url}/__devstack/accounts/{cf.account_id}/workers/scripts/{script}{suffix}"

    def post(self, script: str, suffix: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(self.admin(script, suffix), json=body)
        response.raise_for_status()
        return dict(response.json())

    def gradual(self, script: str) -> dict[str, Any]:
        """New code uploaded (secrets kept) and rolled out to 10 %: the latest is not fully deployed."""
        new = self.post(script, "/versions", {"deploy": False, "message": "new code"})
        old = new["number"] - 1
        split = [{"version": new["number"], "percentage": 10}, {"version": old, "percentage": 90}]
        self.post(script, "/deployments", {"versions": split})
        return new

    def deploy(self, script: str, number: int) -> None:
        self.post(script, "/deployments", {"versions": [{"version": number, "percentage": 100}]})

    def version_secrets(self, script: str, number: int) -> dict[str, str]:
        response = httpx.get(self.admin(script, f"/versions/{number}"))
        response.raise_for_status()
        return {name: body["text"] for name, body in response.json()["secrets"].items()}

    def status(self, mapping: str) -> Any:
        return self.stack.state.mapping_status(mapping)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with Devstack(scripts=SCRIPTS) as devstack:
        devstack.wait_until_ready()
        s = Stack(devstack, tmp_path / "state.sqlite3")
        try:
            yield s
        finally:
            s.state.close()
            s.cloudflare.close()


def rig(stack: Stack, **sync: Any) -> Rig:
    stack.put("app/edge", {"k1": f"{CANARY}-1", "k2": f"{CANARY}-2"})
    settings = stack.settings(keys_mapping("edge", "app/edge", "edge", {"k1": "ONE", "k2": "TWO"}), **sync)
    r = Rig(stack, settings)
    assert r.cycle().ok
    return r


def rotate(stack: Stack, n: int) -> None:
    stack.put("app/edge", {"k1": f"{CANARY}-1-v{n}", "k2": f"{CANARY}-2-v{n}"})


# -- on_undeployed -----------------------------------------------------------------------------------


def test_report_fails_the_mapping_during_a_gradual_deployment_and_writes_nothing(stack: Stack) -> None:
    r = rig(stack, on_undeployed="report")
    r.gradual("edge")
    versions_before = stack.devstack.cloudflare.versions_of("edge")
    rotate(stack, 2)

    report = r.cycle()

    (result,) = report.results
    assert result.error_code is not None and result.error_code.startswith("CloudflareNotDeployed")
    assert stack.devstack.cloudflare.versions_of("edge") == versions_before


def test_stage_writes_exactly_the_new_values_into_an_undeployed_version_and_its_deployment_syncs(
    stack: Stack,
) -> None:
    r = rig(stack, on_undeployed="stage")
    gradual = r.gradual("edge")
    rotate(stack, 2)

    report = r.cycle()

    (result,) = report.results
    staged = stack.devstack.cloudflare.latest_version("edge")
    assert (result.error_code, result.staged_version) == ("Staged", staged.number)
    assert (result.error or "").startswith(f"staged in version {staged.number}, not deployed")
    assert not result.in_sync
    (line,) = format_once(report)
    assert line.startswith("STAGED edge") and f"staged in version {staged.number}, not deployed" in line
    metrics = Metrics()
    metrics.record_cycle(report)
    exported = metrics.render()[0].decode()
    assert 'syncd_mapping_staged{mapping="edge"} 1.0' in exported
    assert leaks(exported + line) == []
    assert staged.number == gradual["number"] + 1
    assert r.version_secrets("edge", staged.number) == {"ONE": f"{CANARY}-1-v2", "TWO": f"{CANARY}-2-v2"}
    assert staged.annotations["workers/message"].startswith("syncd:")
    deployment = stack.devstack.cloudflare.current_deployment("edge")
    assert deployment is not None and staged.id not in {v for v, _ in deployment.split}  # never deployed by syncd
    # The next cycles keep the staged status and write nothing more.
    stack.clear_requests()
    again = r.cycle()
    assert (again.results[0].error_code, again.results[0].staged_version) == ("Staged", staged.number)
    assert [m for m, _ in stack.requests("cloudflare") if m != "GET"] == []
    assert (r.status("edge").last_error_code, r.status("edge").staged_version) == ("Staged", staged.number)

    r.deploy("edge", staged.number)  # the team finishes the rollout
    r.checker.check_now()

    status = r.status("edge")
    assert status.in_sync and status.last_error_code is None and status.staged_version is None
    assert r.cycle().results[0].in_sync


def test_stage_a_later_rotation_stages_again_and_a_later_deployment_counts(stack: Stack) -> None:
    r = rig(stack, on_undeployed="stage")
    r.gradual("edge")
    rotate(stack, 2)
    first = r.cycle().results[0]
    rotate(stack, 3)
    second = r.cycle().results[0]
    latest = stack.devstack.cloudflare.latest_version("edge")
    assert (first.error_code, second.error_code) == ("Staged", "Staged")
    assert (first.staged_version, second.staged_version) == (latest.number - 1, latest.number)
    code = r.post("edge", "/versions", {"deploy": True, "message": "ship it"})  # code deploy, secrets kept
    assert code["number"] == latest.number + 1
    r.checker.check_now()
    assert r.status("edge").in_sync
    assert r.version_secrets("edge", code["number"])["ONE"] == f"{CANARY}-1-v3"


def test_per_mapping_override_stages_only_that_mapping(stack: Stack) -> None:
    stack.put("app/edge", {"k1": f"{CANARY}-1"})
    stack.put("app/more", {"k": f"{CANARY}-m"})
    settings = stack.settings(
        {**keys_mapping("edge", "app/edge", "edge", {"k1": "ONE"}), "on_undeployed": "stage"},
        keys_mapping("more", "app/more", "edge", {"k": "MORE"}),
    )
    r = Rig(stack, settings)
    assert r.cycle().ok
    r.gradual("edge")
    stack.put("app/edge", {"k1": f"{CANARY}-1-v2"})
    stack.put("app/more", {"k": f"{CANARY}-m-v2"})

    results = {res.mapping: res for res in r.cycle().results}
    codes = {name: res.error_code for name, res in results.items()}

    staged = stack.devstack.cloudflare.latest_version("edge")
    assert (codes["edge"], results["edge"].staged_version) == ("Staged", staged.number)
    assert results["more"].staged_version is None
    assert codes["more"] is not None and codes["more"].startswith("CloudflareNotDeployed")
    assert r.version_secrets("edge", staged.number)["ONE"] == f"{CANARY}-1-v2"
    assert r.version_secrets("edge", staged.number)["MORE"] == f"{CANARY}-m"


# -- drift -------------------------------------------------------------------------------------------


def test_a_hand_overwrite_is_detected_and_corrected_in_one_call(stack: Stack) -> None:
    r = rig(stack)
    assert [f.kind for f in r.checker.check_now()] == ["none"]  # syncd's own first write is not drift
    r.post("edge", "/hand-edit", {"set": {"ONE": {"name": "ONE", "type": "secret_text", "text": "hand-made"}}})

    with capture_logs() as logs:
        (finding,) = r.checker.check_now()
        stack.clear_requests()
        report = r.correct()

    assert finding.kind == "overwritten"
    assert report.ok
    assert stack.texts("edge") == {"ONE": f"{CANARY}-1", "TWO": f"{CANARY}-2"}
    writes = [(m, p) for m, p in stack.requests("cloudflare") if m != "GET"]
    assert len(writes) == 1 and writes[0][1].endswith("/edge/secrets-bulk")
    detected = [e for e in logs if e["event"] == "drift.detected"]
    assert len(detected) == 1
    assert (detected[0]["author"], detected[0]["source"]) == ("someone.else@example.com", "dash")
    assert detected[0]["changed_at"] and detected[0]["script"] == "edge"
    assert r.metrics.detected == ["edge"] and r.metrics.corrected == ["edge"]
    assert leaks(repr(logs)) == []
    # syncd's own correction is not drift.
    assert [f.kind for f in r.checker.check_now()] == ["none"]
    assert r.requested == []


def test_a_hand_delete_is_recreated(stack: Stack) -> None:
    r = rig(stack)
    r.checker.check_now()
    r.post("edge", "/hand-edit", {"delete": ["TWO"]})

    (finding,) = r.checker.check_now()
    assert (finding.kind, finding.missing) == ("missing", frozenset({"TWO"}))
    assert r.correct().ok
    assert stack.texts("edge") == {"ONE": f"{CANARY}-1", "TWO": f"{CANARY}-2"}


def test_report_mode_only_logs_and_counts(stack: Stack) -> None:
    r = rig(stack, drift="report")
    r.checker.check_now()
    r.post("edge", "/hand-edit", {"set": {"ONE": {"name": "ONE", "type": "secret_text", "text": "hand-made"}}})

    (finding,) = r.checker.check_now()

    assert finding.kind == "overwritten"
    assert r.requested == [] and r.metrics.detected == ["edge"]
    assert stack.texts("edge")["ONE"] == "hand-made"


def test_a_code_deploy_that_keeps_secrets_is_not_drift(stack: Stack) -> None:
    r = rig(stack)
    r.checker.check_now()
    r.post("edge", "/versions", {"deploy": True, "message": "new code", "source": "wrangler"})

    stack.clear_requests()
    findings = r.checker.check_now()

    assert [f.kind for f in findings] == ["none"]
    assert r.requested == []
    assert [m for m, _ in stack.requests("cloudflare") if m != "GET"] == []


def test_a_binding_syncd_does_not_own_is_never_touched(stack: Stack) -> None:
    r = rig(stack)
    r.checker.check_now()
    # Someone adds and then changes a binding of their own.
    r.post("edge", "/hand-edit", {"set": {"THEIRS": {"name": "THEIRS", "type": "secret_text", "text": "x"}}})
    r.post("edge", "/hand-edit", {"set": {"THEIRS": {"name": "THEIRS", "type": "secret_text", "text": "y"}}})

    (finding,) = r.checker.check_now()
    stack.clear_requests()
    if r.requested:
        r.correct()

    # Their edits make syncd re-push what it owns (it cannot tell which binding changed) but never theirs.
    assert stack.texts("edge")["THEIRS"] == "y"
    for method, path in stack.requests("cloudflare"):
        assert "THEIRS" not in path, (method, path)
    assert finding.kind in {"none", "overwritten"}


def test_a_rotation_the_check_waited_for_is_not_drift(stack: Stack) -> None:
    """The scheduled check waits for a running cycle (``exclusive``); what that cycle wrote is
    syncd's own, first check or not (the false drift of every demo run before 2026-12-07: the
    check judged by what the state said before it waited)."""
    r = rig(stack)

    @contextlib.contextmanager
    def a_rotation_ends_meanwhile() -> Iterator[bool]:
        rotate(stack, 2)
        assert r.cycle().ok
        yield True

    with capture_logs() as logs:
        assert r.checker.run_due(a_rotation_ends_meanwhile) == 1  # the first check of the script
        assert r.checker.run_due(a_rotation_ends_meanwhile) == 0  # not due again yet
    assert [e for e in logs if e["event"] == "drift.detected"] == []
    assert r.requested == []
    r.post("edge", "/hand-edit", {"set": {"ONE": {"name": "ONE", "type": "secret_text", "text": "hand-made"}}})
    (finding,) = r.checker.check_now()
    assert finding.kind == "overwritten"  # and the hand edit after it still is


def test_first_check_after_a_restart_sees_an_edit_made_while_syncd_was_down(stack: Stack) -> None:
    r = rig(stack)
    r.post("edge", "/hand-edit", {"set": {"ONE": {"name": "ONE", "type": "secret_text", "text": "hand-made"}}})
    fresh = Rig(stack, r.settings)  # a new process: no counts, no last-seen version

    (finding,) = fresh.checker.check_now()

    assert finding.kind == "overwritten"
    assert fresh.correct().ok
    assert stack.texts("edge")["ONE"] == f"{CANARY}-1"


def test_targets_are_scripts_with_owned_bindings_only(stack: Stack) -> None:
    r = rig(stack)
    findings = r.checker.check_now()
    assert [f.target for f in findings] == [Target(stack.devstack.cloudflare.account_id, "edge")]
