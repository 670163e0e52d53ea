"""The reconciliation cycle against in-memory fakes: call counts (invariants 3 and 4), isolation,
on_delete/prune, deadlines, dry runs, and no value anywhere but on the fake Worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from syncd.config import Settings
from syncd.engine.drift import DriftCorrection
from syncd.engine.reconciler import Reconciler
from syncd.engine.report import Action, CycleReport, Reason, Trigger
from syncd.engine.state import StateStore
from syncd.errors import VaultPermissionDenied
from syncd.model import VaultSecretRef
from tests.engine.conftest import CANARY, CANARY_2, leaks
from tests.engine.fakes import FakeSource, FakeWorkers, keys_mapping, make_settings, target

A, B = target("script-a"), target("script-b")


class World:
    def __init__(self, state_path: Path) -> None:
        self.path = state_path
        self.source = FakeSource()
        self.workers = FakeWorkers()
        self.workers.add_script("script-a")
        self.workers.add_script("script-b")
        self.state = StateStore.open(state_path)
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def reconciler(self, settings: Settings, **kwargs: Any) -> Reconciler:
        return Reconciler(settings, self.source, self.workers, self.state, clock=self.clock, **kwargs)

    def restart(self) -> None:
        self.state.close()
        self.state = StateStore.open(self.path)

    def reset_counts(self) -> None:
        self.source.calls.clear()
        self.workers.calls.clear()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "state.sqlite3")
    yield w
    w.state.close()


def result(report: CycleReport, mapping: str) -> Any:
    (found,) = [r for r in report.results if r.mapping == mapping]
    return found


TWO_SCRIPTS = make_settings(
    [
        keys_mapping("to-a", "app", "script-a", {"k1": "ONE", "k2": "TWO", "k3": "THREE"}),
        keys_mapping("to-b", "app", "script-b", {"k1": "ONE", "k2": "TWO", "k3": "THREE"}),
        keys_mapping("other", "other", "script-a", {"x": "OTHER"}),
    ]
)


def seed(world: World) -> None:
    world.source.put("app", {"k1": CANARY, "k2": "two", "k3": "three"})
    world.source.put("other", {"x": "x"})


def test_first_cycle_pushes_every_binding_with_one_call_per_script(world: World) -> None:
    seed(world)
    report = world.reconciler(TWO_SCRIPTS).reconcile(trigger=Trigger.STARTUP)
    assert report.ok
    assert world.workers.texts(A) == {"ONE": CANARY, "TWO": "two", "THREE": "three", "OTHER": "x"}
    assert set(world.workers.texts(B)) == {"ONE", "TWO", "THREE"}
    assert sorted((c.operation, c.target.script) for c in world.workers.writes()) == [
        ("bulk", "script-a"),
        ("bulk", "script-b"),
    ]
    assert {c.reason for c in report.changes} == {Reason.NEW}


def test_an_unchanged_world_costs_one_metadata_read_per_secret_and_no_cloudflare_call(world: World) -> None:
    seed(world)
    reconciler = world.reconciler(TWO_SCRIPTS)
    reconciler.reconcile()
    world.reset_counts()
    report = reconciler.reconcile()
    assert report.ok
    assert sorted(world.source.calls) == [("metadata", "secret/app"), ("metadata", "secret/other")]
    assert world.workers.calls == []
    assert report.changes == ()


def test_an_unchanged_world_stays_cheap_after_a_restart(world: World) -> None:
    seed(world)
    world.reconciler(TWO_SCRIPTS).reconcile()
    world.restart()
    world.reset_counts()
    report = world.reconciler(TWO_SCRIPTS).reconcile()
    assert report.ok
    assert world.source.count("metadata") == 2
    assert world.source.count("read") == 0
    assert world.workers.calls == []


def test_a_drift_correction_rewrites_exactly_its_bindings_with_one_call_and_plants_nothing(world: World) -> None:
    seed(world)
    reconciler = world.reconciler(TWO_SCRIPTS)
    reconciler.reconcile()
    recorded = world.state.bindings()
    world.reset_counts()

    correction = DriftCorrection(A, frozenset({"ONE", "OTHER"}), "changed by someone else", found_at=999.0)
    report = reconciler.reconcile(trigger=Trigger.DRIFT, only_mappings={"to-a", "other"}, corrections=[correction])

    assert report.ok
    assert sorted((c.mapping, c.binding, c.reason) for c in report.changes) == [
        ("other", "OTHER", Reason.DRIFT),
        ("to-a", "ONE", Reason.DRIFT),
    ]
    assert [(c.operation, c.target.script) for c in world.workers.writes()] == [("bulk", "script-a")]
    assert world.source.count("read") == 2  # both mappings re-read from Vault though their versions did not move
    assert [r.fingerprint for r in world.state.bindings()] == [r.fingerprint for r in recorded]
    world.reset_counts()
    assert reconciler.reconcile().changes == ()  # no correction given: nothing is rewritten
    assert world.workers.calls == []


def test_rotating_a_secret_mapped_to_two_scripts_costs_exactly_two_bulk_calls(world: World) -> None:
    seed(world)
    reconciler = world.reconciler(TWO_SCRIPTS)
    reconciler.reconcile()
    world.source.put("app", {"k1": CANARY_2, "k2": "two-2", "k3": "three-2"})
    world.reset_counts()
    report = reconciler.reconcile(trigger=Trigger.NOTIFICATION)
    assert [(c.operation, c.target.script, c.names) for c in world.workers.writes()] == [
        ("bulk", "script-a", ("ONE", "THREE", "TWO")),
        ("bulk", "script-b", ("ONE", "THREE", "TWO")),
    ]
    assert world.source.count("read") == 1
    assert world.workers.texts(B)["ONE"] == CANARY_2
    assert {(c.mapping, c.reason, c.vault_version) for c in report.changes} == {
        ("to-a", Reason.CHANGED, 2),
        ("to-b", Reason.CHANGED, 2),
    }
    assert {p.target.script for p in report.pushes} == {"script-a", "script-b"}


def test_a_new_version_with_one_changed_key_writes_only_that_binding(world: World) -> None:
    seed(world)
    reconciler = world.reconciler(TWO_SCRIPTS)
    reconciler.reconcile()
    world.source.put("app", {"k1": CANARY, "k2": "two-2", "k3": "three"})
    world.reset_counts()
    reconciler.reconcile()
    assert [c.names for c in world.workers.writes()] == [("TWO",), ("TWO",)]


def test_a_renamed_binding_is_written_without_a_new_vault_version(world: World) -> None:
    world.source.put("app", {"k1": CANARY})
    before = make_settings([keys_mapping("m", "app", "script-a", {"k1": "OLD_NAME"})])
    after = make_settings([keys_mapping("m", "app", "script-a", {"k1": "NEW_NAME"})])
    reconciler = world.reconciler(before)
    reconciler.reconcile()
    reconciler.update_settings(after)
    world.reset_counts()
    report = reconciler.reconcile()
    assert world.source.count("read") == 1
    assert [(c.binding, c.action, c.reason) for c in report.changes] == [("NEW_NAME", Action.WRITE, Reason.NEW)]
    assert world.workers.texts(A) == {"OLD_NAME": CANARY, "NEW_NAME": CANARY}  # prune is off: the old one stays
    world.reset_counts()
    assert world.reconciler(after).reconcile().changes == ()
    assert world.workers.calls == []


def test_a_renamed_binding_with_prune_deletes_the_old_owned_name_in_the_same_call(world: World) -> None:
    world.source.put("app", {"k1": CANARY})
    reconciler = world.reconciler(make_settings([keys_mapping("m", "app", "script-a", {"k1": "OLD_NAME"})], prune=True))
    reconciler.reconcile()
    reconciler.update_settings(make_settings([keys_mapping("m", "app", "script-a", {"k1": "NEW_NAME"})], prune=True))
    world.reset_counts()
    reconciler.reconcile()
    assert [c.names for c in world.workers.writes()] == [("NEW_NAME", "OLD_NAME")]
    assert world.workers.texts(A) == {"NEW_NAME": CANARY}


def test_kv_v1_is_read_every_cycle_and_written_only_when_its_content_changed(world: World) -> None:
    world.source.put("search", {"key": CANARY}, mount="kv")
    settings = make_settings([keys_mapping("v1", "search", "script-a", {"key": "SEARCH_KEY"}, mount="kv")])
    reconciler = world.reconciler(settings)
    reconciler.reconcile()
    world.reset_counts()
    assert reconciler.reconcile().changes == ()
    assert world.source.calls == [("read", "kv/search")]
    assert world.workers.calls == []
    world.source.put("search", {"key": CANARY_2}, mount="kv")
    report = reconciler.reconcile()
    assert [(c.binding, c.reason, c.vault_version) for c in report.changes] == [("SEARCH_KEY", Reason.CHANGED, None)]
    assert world.workers.texts(A) == {"SEARCH_KEY": CANARY_2}


def test_a_missing_path_and_a_denied_path_fail_only_their_own_mappings(world: World) -> None:
    world.source.put("fine", {"k": "v"})
    world.source.put("denied", {"k": "v"})
    world.source.errors[VaultSecretRef("secret", "denied")] = VaultPermissionDenied(
        "permission denied on secret/denied", path="secret/denied", status=403
    )
    settings = make_settings(
        [
            keys_mapping("fine", "fine", "script-a", {"k": "FINE"}),
            keys_mapping("missing", "nowhere", "script-a", {"k": "MISSING"}),
            keys_mapping("denied", "denied", "script-b", {"k": "DENIED"}),
        ]
    )
    report = world.reconciler(settings).reconcile()
    assert not report.ok
    assert report.exit_code == 1
    assert result(report, "fine").in_sync
    assert result(report, "missing").error_code == "VaultSecretNotFound"
    assert result(report, "denied").error_code == "VaultPermissionDenied"
    assert world.workers.texts(A) == {"FINE": "v"}
    status = world.state.mapping_status("denied")
    assert status is not None
    assert (status.in_sync, status.last_error_code) == (False, "VaultPermissionDenied")


def test_a_script_refusing_writes_fails_its_mappings_and_the_next_cycle_retries(world: World) -> None:
    seed(world)
    reconciler = world.reconciler(TWO_SCRIPTS)
    world.workers.not_deployed(B)
    report = reconciler.reconcile()
    assert result(report, "to-b").error_code == "CloudflareNotDeployed(10215)"
    assert result(report, "to-a").in_sync
    assert world.state.bindings(target=B) == []
    del world.workers.refuse[B]
    world.reset_counts()
    report = reconciler.reconcile()
    assert report.ok
    assert [(c.target.script, c.names) for c in world.workers.writes()] == [("script-b", ("ONE", "THREE", "TWO"))]


def test_missing_only_adopts_what_the_worker_has_and_writes_it_at_the_next_rotation(world: World) -> None:
    world.workers.add_script("script-a", ONE="theirs")
    world.source.put("app", {"k1": CANARY, "k2": "two"})
    settings = make_settings(
        [keys_mapping("m", "app", "script-a", {"k1": "ONE", "k2": "TWO"})], initial_sync="missing-only"
    )
    reconciler = world.reconciler(settings)
    report = reconciler.reconcile()
    assert sorted((c.binding, c.action) for c in report.changes) == [("ONE", Action.ADOPT), ("TWO", Action.WRITE)]
    assert world.workers.texts(A) == {"ONE": "theirs", "TWO": "two"}
    world.source.put("app", {"k1": CANARY_2, "k2": "two"})
    reconciler.reconcile()
    assert world.workers.texts(A)["ONE"] == CANARY_2
    owned = {r.name: r.owned for r in world.state.bindings()}
    assert owned == {"ONE": False, "TWO": True}


def test_first_sight_lists_a_script_once_and_never_deletes_what_syncd_did_not_create(world: World) -> None:
    world.workers.add_script("script-a", ONE="theirs")
    world.source.put("app", {"k1": CANARY, "k2": "two"})
    settings = make_settings([keys_mapping("m", "app", "script-a", {"k1": "ONE", "k2": "TWO"})], on_delete="delete")
    reconciler = world.reconciler(settings)
    reconciler.reconcile()
    assert [c.operation for c in world.workers.calls] == ["list", "bulk"]
    world.source.remove("app")
    world.reset_counts()
    report = reconciler.reconcile()
    assert [(c.binding, c.action, c.reason) for c in report.changes] == [("TWO", Action.DELETE, Reason.VAULT_DELETED)]
    assert world.workers.texts(A) == {"ONE": CANARY}
    assert result(report, "m").in_sync


def test_on_delete_keep_reports_a_vanished_key_and_deletes_nothing(world: World) -> None:
    world.source.put("app", {"k1": "one", "k2": "two"})
    settings = make_settings([keys_mapping("m", "app", "script-a", {"k1": "ONE", "k2": "TWO"})])
    reconciler = world.reconciler(settings)
    reconciler.reconcile()
    world.source.put("app", {"k1": "one"})
    world.reset_counts()
    report = reconciler.reconcile()
    assert result(report, "m").error_code == "ValueRejected"
    assert world.workers.writes() == []
    assert set(world.workers.texts(A)) == {"ONE", "TWO"}


def test_on_delete_delete_removes_a_vanished_keys_binding_and_still_writes_the_rest(world: World) -> None:
    world.source.put("app", {"k1": "one", "k2": "two"})
    settings = make_settings([keys_mapping("m", "app", "script-a", {"k1": "ONE", "k2": "TWO"})], on_delete="delete")
    reconciler = world.reconciler(settings)
    reconciler.reconcile()
    world.source.put("app", {"k1": "one-2"})
    world.reset_counts()
    report = reconciler.reconcile()
    assert result(report, "m").in_sync
    assert [c.names for c in world.workers.writes()] == [("ONE", "TWO")]
    assert world.workers.texts(A) == {"ONE": "one-2"}


def test_a_deleted_current_version_with_keep_fails_the_mapping_and_keeps_the_bindings(world: World) -> None:
    world.source.put("app", {"k1": "one"})
    reconciler = world.reconciler(make_settings([keys_mapping("m", "app", "script-a", {"k1": "ONE"})]))
    reconciler.reconcile()
    world.source.put("app", {"k1": "one-2"})
    world.source.delete_current("app")
    world.reset_counts()
    report = reconciler.reconcile()
    assert result(report, "m").error_code == "VaultSecretDeleted"
    assert world.workers.writes() == []
    assert world.workers.texts(A) == {"ONE": "one"}


def test_all_keys_with_on_delete_delete_removes_the_binding_of_a_key_gone_from_vault(world: World) -> None:
    world.source.put("app", {"alpha": "a", "beta": "b"})
    all_keys = {
        "name": "all",
        "vault": {"mount": "secret", "path": "app"},
        "target": {"script": "script-a"},
        "secret_text": {"all_keys": True, "prefix": "APP_", "uppercase": True},
    }
    reconciler = world.reconciler(make_settings([all_keys], on_delete="delete"))
    reconciler.reconcile()
    assert set(world.workers.texts(A)) == {"APP_ALPHA", "APP_BETA"}
    world.source.put("app", {"alpha": "a"})
    report = reconciler.reconcile()
    assert [(c.binding, c.action, c.reason) for c in report.changes] == [
        ("APP_BETA", Action.DELETE, Reason.VAULT_DELETED)
    ]
    assert world.workers.texts(A) == {"APP_ALPHA": "a"}


def test_on_delete_delete_still_reports_a_path_that_never_existed(world: World) -> None:
    settings = make_settings([keys_mapping("typo", "no/such/path", "script-a", {"k": "K"})], on_delete="delete")
    report = world.reconciler(settings).reconcile()
    assert result(report, "typo").error_code == "VaultSecretNotFound"
    assert world.workers.writes() == []


def test_prune_deletes_the_owned_bindings_of_a_removed_mapping_and_forgets_it(world: World) -> None:
    world.workers.add_script("script-a", FOREIGN="theirs")
    world.source.put("app", {"k1": "one"})
    world.source.put("other", {"x": "x"})
    both = [
        keys_mapping("keep", "other", "script-a", {"x": "X"}),
        keys_mapping("drop", "app", "script-a", {"k1": "ONE"}),
    ]
    world.reconciler(make_settings(both)).reconcile()
    world.reset_counts()
    without_prune = world.reconciler(make_settings(both[:1])).reconcile()
    assert without_prune.ok
    assert world.workers.writes() == []
    assert world.state.mapping_status("drop") is None
    assert world.state.bindings(mapping="drop") != []

    report = world.reconciler(make_settings(both[:1], prune=True)).reconcile()
    assert [(c.mapping, c.binding, c.reason) for c in report.changes] == [("drop", "ONE", Reason.PRUNED)]
    assert world.workers.texts(A) == {"FOREIGN": "theirs", "X": "x"}
    assert world.state.mapping_names() == {"keep"}


def test_a_passed_deadline_stops_new_work_and_reports_the_rest_as_timed_out(world: World) -> None:
    for path in ("s1", "s2", "s3"):
        world.source.put(path, {"k": "v"})
    settings = make_settings(
        [keys_mapping(p, p, "script-a", {"k": f"K_{p.upper()}"}) for p in ("s1", "s2", "s3")], concurrency=1
    )

    def slow_metadata(operation: str, where: str) -> None:
        if operation == "metadata":
            world.now += 10

    world.source.before_call = slow_metadata
    report = world.reconciler(settings).reconcile(deadline=world.now + 5)
    assert report.timed_out
    assert not report.ok
    assert world.source.count("metadata") == 1
    codes = sorted(r.error_code or "ok" for r in report.results)
    assert codes == ["CycleTimeout", "CycleTimeout", "CycleTimeout"]
    assert world.workers.writes() == []


def test_dry_run_reports_changes_and_writes_nothing_anywhere(world: World) -> None:
    seed(world)
    report = world.reconciler(TWO_SCRIPTS).reconcile(trigger=Trigger.PLAN, dry_run=True)
    assert report.dry_run
    assert len(report.changes) == 7
    assert not result(report, "to-a").in_sync
    assert world.workers.writes() == []
    assert world.state.bindings() == []
    assert world.state.all_mapping_status() == []


def test_only_mappings_restricts_the_cycle(world: World) -> None:
    seed(world)
    report = world.reconciler(TWO_SCRIPTS).reconcile(trigger=Trigger.MANUAL, only_mappings=["other"])
    assert [r.mapping for r in report.results] == ["other"]
    assert world.source.calls == [("kv_version", "secret"), ("metadata", "secret/other"), ("read", "secret/other")]
    assert world.workers.texts(B) == {}


def test_an_unexpected_error_fails_only_its_mapping_as_internal_error(world: World) -> None:
    seed(world)
    original = world.source.read

    def broken_for_other(ref: Any, kv: Any, version: int | None) -> Any:
        if ref.path == "other":
            raise RuntimeError(f"boom {CANARY}")
        return original(ref, kv, version)

    world.source.read = broken_for_other  # type: ignore[method-assign,assignment]
    with capture_logs() as logs:
        report = world.reconciler(TWO_SCRIPTS).reconcile()
    assert result(report, "other").error_code == "InternalError"
    assert result(report, "to-a").in_sync
    assert any(e["event"] == "mapping.internal_error" for e in logs)
    assert leaks(repr(logs)) == []
    assert leaks(repr(report)) == []


def test_canary_values_reach_only_the_worker(world: World) -> None:
    seed(world)
    reconciler = world.reconciler(TWO_SCRIPTS)
    with capture_logs() as logs:
        first = reconciler.reconcile()
        world.source.put("app", {"k1": CANARY_2, "k2": "two", "k3": "three"})
        world.workers.not_deployed(B)
        second = reconciler.reconcile()
    assert world.workers.texts(A)["ONE"] == CANARY_2
    assert leaks(repr(logs)) == []
    assert leaks(repr(first) + repr(second)) == []
    assert leaks(repr(world.state.bindings()) + repr(world.state.all_mapping_status())) == []
    assert leaks(world.path.read_bytes()) == []


BOOM = f"boom with {CANARY}"


@pytest.mark.parametrize("operation", ["list_secrets", "bulk_update", "put_secret"])
def test_an_unexpected_client_error_fails_only_that_scripts_mappings_as_internal_error(
    world: World, operation: str
) -> None:
    seed(world)
    settings = TWO_SCRIPTS
    if operation == "put_secret":
        single = settings.cloudflare.model_copy(update={"write_mode": "single"})
        settings = settings.model_copy(update={"cloudflare": single})
    original = getattr(world.workers, operation)

    def broken_for_b(where: Any, *args: Any) -> Any:
        if where == B:
            raise RuntimeError(BOOM)
        return original(where, *args)

    setattr(world.workers, operation, broken_for_b)
    with capture_logs() as logs:
        report = world.reconciler(settings).reconcile()
    assert {r.mapping: r.error_code for r in report.results} == {"to-a": None, "to-b": "InternalError", "other": None}
    assert report.exit_code == 1
    assert set(world.workers.texts(A)) == {"ONE", "TWO", "THREE", "OTHER"}
    assert world.workers.texts(B) == {}
    (logged,) = [e for e in logs if e["event"] == "mapping.internal_error"]
    assert (logged["mappings"], logged["script"], logged["exc_type"]) == (["to-b"], "script-b", "RuntimeError")
    assert any("broken_for_b" in frame for frame in logged["frames"])
    assert "boom" not in repr(logs) + repr(report)
    assert leaks(repr(logs)) == []
    assert leaks(repr(report)) == []
    status = world.state.mapping_status("to-b")
    assert status is not None
    assert (status.last_error_code, status.in_sync) == ("InternalError", False)
    assert leaks(world.path.read_bytes()) == []
