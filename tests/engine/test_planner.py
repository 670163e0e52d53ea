"""The planner's rules, one table row (or test) per rule: desired + recorded + policy -> changes."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import pytest

from syncd.engine.fingerprint import Fingerprinter
from syncd.engine.planner import MappingDesire, Plan, Policy, plan, targets_needing_names
from syncd.engine.report import Action, Reason
from syncd.engine.state import BindingRecord
from syncd.engine.values import DesiredBinding
from syncd.model import BindingKind, SecretBody, Target, VaultSecretRef
from tests.engine.conftest import ACCOUNT, CANARY, CANARY_2, leaks

A = Target(ACCOUNT, "script-a")
B = Target(ACCOUNT, "script-b")
REF = VaultSecretRef("secret", "app")
FP = Fingerprinter(b"k" * 32)


def binding(name: str, text: str = CANARY, *, where: Target = A, mapping: str = "m") -> DesiredBinding:
    body = SecretBody({"name": name, "type": "secret_text", "text": text})
    return DesiredBinding(mapping, where, name, BindingKind.SECRET_TEXT, body)


def key_binding(name: str, *, usages: list[str]) -> DesiredBinding:
    body = SecretBody(
        {
            "name": name,
            "type": "secret_key",
            "format": "raw",
            "algorithm": {"name": "HMAC", "hash": "SHA-256"},
            "usages": usages,
            "key_base64": "AAAA",
        }
    )
    return DesiredBinding("m", A, name, BindingKind.SECRET_KEY, body)


def record_of(
    b: DesiredBinding, *, version: int | None = 1, owned: bool = True, fingerprint: str | None = "same"
) -> BindingRecord:
    return BindingRecord(
        target=b.target,
        name=b.name,
        mapping=b.mapping,
        ref=REF,
        vault_version=version,
        fingerprint=FP.of(b.body) if fingerprint == "same" else fingerprint,
        shape=b.shape(),
        owned=owned,
        pushed_at=1.0,
    )


def desire(*bindings: DesiredBinding, version: int | None = 2, vanished: frozenset[str] = frozenset()) -> MappingDesire:
    mapping = bindings[0].mapping if bindings else "m"
    return MappingDesire(mapping, A, REF, version, tuple(bindings), vanished)


def only_change(result: Plan) -> tuple[str, Action, Reason]:
    (change,) = result.changes
    return change.binding, change.action, change.reason


NEW_NAME = binding("API_KEY")


@pytest.mark.parametrize(
    ("remote", "initial_sync", "expected_action", "expected_owned"),
    [
        pytest.param(set(), "push", Action.WRITE, True, id="absent-push-writes-owned"),
        pytest.param({"API_KEY"}, "push", Action.WRITE, False, id="present-push-writes-not-owned"),
        pytest.param(set(), "missing-only", Action.WRITE, True, id="absent-missing-only-writes-owned"),
        pytest.param({"API_KEY"}, "missing-only", Action.ADOPT, False, id="present-missing-only-adopts"),
    ],
)
def test_binding_without_record_is_written_or_adopted_by_first_sight_rules(
    remote: set[str], initial_sync: Literal["push", "missing-only"], expected_action: Action, expected_owned: bool
) -> None:
    result = plan(
        [desire(NEW_NAME)],
        [],
        FP,
        Policy(initial_sync=initial_sync),
        remote_names={A: remote},
    )
    name, action, reason = only_change(result)
    assert (name, action) == ("API_KEY", expected_action)
    if action is Action.WRITE:
        assert reason is Reason.NEW
        (write,) = result.targets[0].writes
        assert write.record.owned is expected_owned
        assert write.record.fingerprint == FP.of(NEW_NAME.body)
        assert write.record.pushed_at is None
        assert result.record_only == ()
    else:
        assert reason is Reason.PRESENT
        assert result.targets == ()
        (adopted,) = result.record_only
        assert (adopted.owned, adopted.fingerprint, adopted.vault_version) == (False, None, 2)


def test_adopting_a_kv_v1_binding_records_its_vault_fingerprint_since_there_is_no_version() -> None:
    result = plan(
        [desire(NEW_NAME, version=None)], [], FP, Policy(initial_sync="missing-only"), remote_names={A: {"API_KEY"}}
    )
    (adopted,) = result.record_only
    assert adopted.fingerprint == FP.of(NEW_NAME.body)
    later = binding("API_KEY", CANARY_2)
    again = plan([desire(later, version=None)], [adopted], FP, Policy(initial_sync="missing-only"))
    assert only_change(again) == ("API_KEY", Action.WRITE, Reason.CHANGED)


@pytest.mark.parametrize(
    ("recorded", "current", "expected"),
    [
        pytest.param(record_of(binding("K")), binding("K"), None, id="same-fingerprint-nothing"),
        pytest.param(record_of(binding("K")), binding("K", CANARY_2), Reason.CHANGED, id="value-changed"),
        pytest.param(
            record_of(key_binding("K", usages=["sign"])),
            key_binding("K", usages=["sign", "verify"]),
            Reason.CONFIG_CHANGED,
            id="shape-changed",
        ),
        pytest.param(
            record_of(binding("K"), fingerprint=None, version=1),
            binding("K"),
            Reason.CHANGED,
            id="adopted-newer-version",
        ),
        pytest.param(
            record_of(binding("K"), fingerprint=None, version=2), binding("K"), None, id="adopted-same-version"
        ),
    ],
)
def test_recorded_binding_is_rewritten_only_when_value_shape_or_adopted_version_changed(
    recorded: BindingRecord, current: DesiredBinding, expected: Reason | None
) -> None:
    result = plan([desire(current, version=2)], [recorded], FP, Policy())
    if expected is None:
        assert result.changes == ()
        assert result.targets == ()
    else:
        assert only_change(result) == ("K", Action.WRITE, expected)


def test_rewrite_keeps_the_recorded_ownership() -> None:
    recorded = record_of(binding("K"), owned=False)
    result = plan([desire(binding("K", CANARY_2))], [recorded], FP, Policy())
    assert result.targets[0].writes[0].record.owned is False


def test_every_mapping_writing_to_one_script_lands_in_one_target_plan() -> None:
    first = binding("ONE", mapping="m1")
    second = binding("TWO", mapping="m2")
    other = binding("THREE", where=B, mapping="m2")
    desires = [
        MappingDesire("m1", A, REF, 2, (first,)),
        MappingDesire("m2", A, REF, 2, (second,)),
        MappingDesire("m2", B, REF, 2, (other,)),
    ]
    result = plan(desires, [], FP, Policy(), remote_names={A: set(), B: set()})
    assert [(t.target, [w.binding.name for w in t.writes]) for t in result.targets] == [
        (A, ["ONE", "TWO"]),
        (B, ["THREE"]),
    ]
    assert result.targets[0].mappings == ("m1", "m2")


def test_first_sight_without_the_workers_names_is_refused() -> None:
    with pytest.raises(ValueError, match="secret names on"):
        plan([desire(NEW_NAME)], [], FP, Policy())


def test_names_are_needed_only_for_targets_with_unrecorded_bindings() -> None:
    recorded = binding("OLD")
    desires = [desire(recorded, binding("NEW", where=B))]
    assert targets_needing_names(desires, [record_of(recorded)]) == {B}
    assert targets_needing_names([desire(recorded)], [record_of(recorded)]) == set()


@pytest.mark.parametrize(
    ("on_delete", "owned", "expected"),
    [
        pytest.param("delete", True, "delete", id="delete-owned"),
        pytest.param("delete", False, "forget", id="delete-not-owned-forgets-only"),
        pytest.param("keep", True, "nothing", id="keep-owned"),
    ],
)
def test_vanished_vault_key_is_deleted_only_when_owned_and_on_delete_says_so(
    on_delete: Literal["keep", "delete"], owned: bool, expected: str
) -> None:
    kept = binding("KEPT")
    gone = record_of(binding("GONE"), owned=owned)
    policy = Policy(on_delete=on_delete)
    result = plan([desire(kept, vanished=frozenset({"GONE"}))], [record_of(kept), gone], FP, policy)
    deletes = [d.change for t in result.targets for d in t.deletes]
    if expected == "delete":
        assert [(c.binding, c.reason) for c in deletes] == [("GONE", Reason.VAULT_DELETED)]
        assert result.forget == ()
    elif expected == "forget":
        assert deletes == []
        assert result.forget == (gone,)
    else:
        assert (deletes, result.forget) == ([], ())


@pytest.mark.parametrize("prune", [True, False])
def test_binding_the_config_no_longer_names_is_pruned_only_with_prune(prune: bool) -> None:
    renamed = binding("NEW_NAME")
    old = record_of(binding("OLD_NAME"))
    result = plan([desire(renamed)], [old, record_of(renamed, fingerprint="stale")], FP, Policy(prune=prune))
    deletes = [(d.change.binding, d.change.reason) for t in result.targets for d in t.deletes]
    assert deletes == ([("OLD_NAME", Reason.PRUNED)] if prune else [])
    assert [w.change.binding for t in result.targets for w in t.writes] == ["NEW_NAME"]


def test_prune_deletes_owned_bindings_of_removed_mappings_and_forgets_the_rest() -> None:
    owned = record_of(binding("OWNED", mapping="gone"))
    foreign = record_of(binding("FOREIGN", mapping="gone"), owned=False)
    claimed = record_of(binding("CLAIMED", mapping="gone"))
    result = plan(
        [], [owned, foreign, claimed], FP, Policy(prune=True), removed_mappings=["gone"], claimed={(A, "CLAIMED"): "m2"}
    )
    assert [(d.change.mapping, d.change.binding, d.change.reason) for d in result.targets[0].deletes] == [
        ("gone", "OWNED", Reason.PRUNED)
    ]
    assert result.forget == (foreign,)


def test_removed_mappings_are_left_alone_without_prune() -> None:
    owned = record_of(binding("OWNED", mapping="gone"))
    result = plan([], [owned], FP, Policy(prune=False), removed_mappings=["gone"])
    assert (result.targets, result.forget, result.changes) == ((), (), ())


def test_a_binding_claimed_by_another_mapping_is_taken_over_without_a_write() -> None:
    old = record_of(binding("SHARED", mapping="before"))
    now = binding("SHARED", mapping="after")
    result = plan(
        [MappingDesire("after", A, REF, 2, (now,))], [old], FP, Policy(prune=True), removed_mappings=["before"]
    )
    assert result.targets == ()
    assert result.record_only == (replace(old, mapping="after"),)


def test_plans_hold_no_values_in_their_text() -> None:
    result = plan([desire(NEW_NAME, binding("OTHER", CANARY_2))], [], FP, Policy(), remote_names={A: set()})
    assert leaks(repr(result)) == []
    assert leaks(repr(result.changes)) == []


# --- write intents (pending records) -------------------------------------------------------------


def intent_of(b: DesiredBinding, *, owned: bool) -> BindingRecord:
    return replace(record_of(b, version=None, owned=owned, fingerprint=None), pushed_at=None, pending=True)


@pytest.mark.parametrize(("remote", "owned"), [(set(), True), ({"API_KEY"}, False)])
def test_a_first_write_carries_a_pending_intent_with_the_decided_ownership_and_no_value_facts(
    remote: set[str], owned: bool
) -> None:
    result = plan([desire(NEW_NAME)], [], FP, Policy(), remote_names={A: remote})
    (write,) = result.targets[0].writes
    assert write.intent == intent_of(NEW_NAME, owned=owned)
    assert write.record.pending is False
    assert write.record.owned is owned


def test_a_rewrite_of_a_recorded_binding_carries_no_intent() -> None:
    result = plan([desire(binding("API_KEY", CANARY_2))], [record_of(NEW_NAME)], FP, Policy())
    (write,) = result.targets[0].writes
    assert write.intent is None


@pytest.mark.parametrize("owned", [True, False])
def test_a_pending_record_is_always_rewritten_with_its_recorded_ownership(owned: bool) -> None:
    result = plan([desire(NEW_NAME)], [intent_of(NEW_NAME, owned=owned)], FP, Policy(initial_sync="missing-only"))
    assert only_change(result) == ("API_KEY", Action.WRITE, Reason.CHANGED)
    (write,) = result.targets[0].writes
    assert (write.record.owned, write.record.pending, write.intent) == (owned, False, None)
    assert write.record.fingerprint == FP.of(NEW_NAME.body)


def test_a_pending_record_needs_no_list_of_the_workers_names() -> None:
    assert targets_needing_names([desire(NEW_NAME)], [intent_of(NEW_NAME, owned=True)]) == set()


def test_an_owned_pending_record_is_deleted_when_its_vault_source_vanished() -> None:
    result = plan(
        [desire(vanished=frozenset({"API_KEY"}))], [intent_of(NEW_NAME, owned=True)], FP, Policy(on_delete="delete")
    )
    assert only_change(result) == ("API_KEY", Action.DELETE, Reason.VAULT_DELETED)
