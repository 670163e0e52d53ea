"""The applier: one call per script (chunked at 100), record only after confirmation, per-target isolation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pytest
from structlog.testing import capture_logs

from syncd.engine.applier import Applier
from syncd.engine.fingerprint import Fingerprinter
from syncd.engine.planner import MappingDesire, Plan, Policy, plan
from syncd.engine.state import BindingRecord, StateStore
from syncd.engine.values import DesiredBinding
from syncd.errors import CloudflareNotFound, CloudflareServerError, CloudflareTransportError, StateError
from syncd.model import BindingKind, SecretBody, Target, VaultSecretRef
from tests.engine.conftest import CANARY, leaks
from tests.engine.fakes import FakeWorkers

REF = VaultSecretRef("secret", "app")


@pytest.fixture
def state() -> Iterator[StateStore]:
    store = StateStore.open(":memory:")
    yield store
    store.close()


@pytest.fixture
def workers() -> FakeWorkers:
    fake = FakeWorkers()
    fake.add_script("script-a")
    fake.add_script("script-b")
    return fake


def desire(mapping: str, where: Target, names: list[str], text: str = CANARY, version: int = 3) -> MappingDesire:
    bindings = tuple(
        DesiredBinding(
            mapping, where, n, BindingKind.SECRET_TEXT, SecretBody({"name": n, "type": "secret_text", "text": text})
        )
        for n in names
    )
    return MappingDesire(mapping, where, REF, version, bindings)


def make_plan(state: StateStore, workers: FakeWorkers, *desires: MappingDesire, **policy: object) -> Plan:
    records = state.bindings()
    remote = {t: {s.name for s in workers.scripts[t].values()} for t in workers.scripts}
    return plan(desires, records, Fingerprinter(state.hmac_key), Policy(**policy), remote_names=remote)  # type: ignore[arg-type]


def test_one_bulk_call_per_script_chunked_at_100_names(state: StateStore, workers: FakeWorkers) -> None:
    a, b = workers.add_script("script-a"), workers.add_script("script-b")
    names = [f"KEY_{i:03d}" for i in range(250)]
    the_plan = make_plan(state, workers, desire("m1", a, names), desire("m2", b, ["ONLY"]))
    result = Applier(workers, state).apply(the_plan)
    assert [(c.operation, c.target.script, len(c.names)) for c in workers.calls] == [
        ("bulk", "script-a", 100),
        ("bulk", "script-a", 100),
        ("bulk", "script-a", 50),
        ("bulk", "script-b", 1),
    ]
    assert len(state.bindings(target=a)) == 250
    assert result.failures == {}
    assert result.pushed == {"m1", "m2"}
    assert [p.outcome for p in result.pushes] == ["ok"] * 4


def test_single_write_mode_puts_and_deletes_one_binding_per_call(state: StateStore, workers: FakeWorkers) -> None:
    a = workers.add_script("script-a")
    Applier(workers, state).apply(make_plan(state, workers, desire("m", a, ["ONE", "TWO"])))
    workers.calls.clear()
    gone = MappingDesire("m", a, REF, 4, desire("m", a, ["ONE"], text="new").bindings, frozenset({"TWO"}))
    Applier(workers, state, write_mode="single").apply(make_plan(state, workers, gone, on_delete="delete"))
    assert [(c.operation, c.names) for c in workers.calls] == [("put", ("ONE",)), ("delete", ("TWO",))]
    assert [r.name for r in state.bindings(target=a)] == ["ONE"]
    assert workers.texts(a) == {"ONE": "new"}


def test_a_refused_call_records_nothing_and_the_next_attempt_repeats_exactly_that_write(
    state: StateStore, workers: FakeWorkers
) -> None:
    a = workers.add_script("script-a")
    workers.not_deployed(a)
    first = make_plan(state, workers, desire("m", a, ["ONE", "TWO"]))
    result = Applier(workers, state).apply(first)
    assert state.bindings() == []
    assert result.failures["m"].reason == "CloudflareNotDeployed(10215)"
    assert result.pushes[0].outcome == "error"
    assert result.pushes[0].confirmed_at is None
    assert result.pushed == set()

    del workers.refuse[a]
    workers.calls.clear()
    second = make_plan(state, workers, desire("m", a, ["ONE", "TWO"]))
    assert second.changes == first.changes
    Applier(workers, state).apply(second)
    assert [(c.operation, c.names) for c in workers.calls] == [("bulk", ("ONE", "TWO"))]
    assert [r.name for r in state.bindings()] == ["ONE", "TWO"]


def test_records_carry_the_confirmation_time_ownership_and_fingerprint(state: StateStore, workers: FakeWorkers) -> None:
    a = workers.add_script("script-a", PRESENT="theirs")
    the_plan = make_plan(state, workers, desire("m", a, ["PRESENT", "FRESH"]))
    Applier(workers, state, clock=lambda: 1234.5).apply(the_plan)
    records = {r.name: r for r in state.bindings()}
    assert records["PRESENT"].owned is False
    assert records["FRESH"].owned is True
    assert {r.pushed_at for r in records.values()} == {1234.5}
    assert records["FRESH"].fingerprint == the_plan.targets[0].writes[0].record.fingerprint
    assert all(isinstance(r, BindingRecord) and r.vault_version == 3 for r in records.values())


def test_one_failing_script_fails_only_the_mappings_writing_to_it(state: StateStore, workers: FakeWorkers) -> None:
    a, b = workers.add_script("script-a"), workers.add_script("script-b")
    workers.not_deployed(a)
    the_plan = make_plan(
        state, workers, desire("on-a", a, ["X"]), desire("also-on-a", a, ["Y"]), desire("on-b", b, ["Z"])
    )
    result = Applier(workers, state).apply(the_plan)
    assert {m: e.reason for m, e in result.failures.items()} == {
        "on-a": "CloudflareNotDeployed(10215)",
        "also-on-a": "CloudflareNotDeployed(10215)",
    }
    assert [r.name for r in state.bindings()] == ["Z"]
    assert set(workers.texts(b)) == {"Z"}
    assert workers.texts(a) == {}


def test_a_failure_mid_target_keeps_confirmed_chunks_and_fails_the_rest(
    state: StateStore, workers: FakeWorkers
) -> None:
    a = workers.add_script("script-a")
    original = workers.bulk_update
    calls = 0

    def second_call_fails(target: Target, changes: dict[str, SecretBody | None]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise CloudflareNotFound("gone", status=404, code=10007)
        original(target, changes)

    workers.bulk_update = second_call_fails  # type: ignore[method-assign,assignment]
    the_plan = make_plan(
        state, workers, desire("first", a, [f"A{i:03d}" for i in range(100)]), desire("late", a, ["Z"])
    )
    result = Applier(workers, state).apply(the_plan)
    assert len(state.bindings()) == 100
    assert set(result.failures) == {"late"}
    assert result.pushed == {"first"}


def test_deleting_from_a_script_that_no_longer_exists_counts_as_done(state: StateStore, workers: FakeWorkers) -> None:
    a = workers.add_script("script-a")
    Applier(workers, state).apply(make_plan(state, workers, desire("m", a, ["OLD"])))
    del workers.scripts[a]
    result = Applier(workers, state).apply(_prune_all(state))
    assert result.failures == {}
    assert state.bindings() == []


def _prune_all(state: StateStore) -> Plan:
    return plan([], state.bindings(), Fingerprinter(state.hmac_key), Policy(prune=True), removed_mappings=["m"])


def test_a_passed_deadline_sends_nothing_and_reports_cycle_timeout(state: StateStore, workers: FakeWorkers) -> None:
    a = workers.add_script("script-a")
    result = Applier(workers, state, clock=lambda: 100.0).apply(
        make_plan(state, workers, desire("m", a, ["X"])), deadline=99.0
    )
    assert workers.calls == []
    assert result.timed_out
    assert result.failures["m"].reason == "CycleTimeout"


def test_one_push_log_line_per_call_with_names_and_no_values(state: StateStore, workers: FakeWorkers) -> None:
    a, b = workers.add_script("script-a"), workers.add_script("script-b")
    workers.not_deployed(b)
    the_plan = make_plan(state, workers, desire("m1", a, ["ONE", "TWO"]), desire("m2", b, ["THREE"]))
    with capture_logs() as logs:
        Applier(workers, state).apply(the_plan)
    pushes = [e for e in logs if e["event"] == "push"]
    assert [(e["script"], e["written"], e["outcome"], e["error_code"]) for e in pushes] == [
        ("script-a", ["ONE", "TWO"], "ok", None),
        ("script-b", ["THREE"], "error", "CloudflareNotDeployed(10215)"),
    ]
    assert pushes[0]["mappings"] == ["m1"]
    assert pushes[0]["vault_versions"] == [3]
    assert pushes[0]["account"] == a.account_id
    assert leaks(repr(logs)) == []


# --- write intents -----------------------------------------------------------------------------------


def test_a_first_write_records_a_pending_owned_intent_before_the_call(state: StateStore, workers: FakeWorkers) -> None:
    a = workers.add_script("script-a", PRESENT="theirs")
    seen: list[BindingRecord] = []
    original = workers.bulk_update

    def looking(target: Target, changes: Mapping[str, SecretBody | None]) -> None:
        seen.extend(state.bindings(target=target))
        original(target, changes)

    workers.bulk_update = looking  # type: ignore[method-assign]
    Applier(workers, state, clock=lambda: 50.0).apply(make_plan(state, workers, desire("m", a, ["FRESH", "PRESENT"])))
    assert [(r.name, r.owned, r.pending, r.fingerprint, r.vault_version, r.pushed_at) for r in seen] == [
        ("FRESH", True, True, None, None, None),
        ("PRESENT", False, True, None, None, None),
    ]
    assert [(r.name, r.owned, r.pending, r.pushed_at) for r in state.bindings()] == [
        ("FRESH", True, False, 50.0),
        ("PRESENT", False, False, 50.0),
    ]


@pytest.mark.parametrize(
    "error",
    [
        CloudflareTransportError("Cloudflare PATCH .../secrets-bulk: timed out (ReadTimeout)"),
        CloudflareServerError("upstream", status=502, code=None),
    ],
    ids=["timeout", "5xx"],
)
def test_an_unknown_outcome_keeps_the_intent_so_the_ownership_survives(
    state: StateStore, workers: FakeWorkers, error: CloudflareTransportError
) -> None:
    a = workers.add_script("script-a")
    workers.refuse[a] = error
    result = Applier(workers, state).apply(make_plan(state, workers, desire("m", a, ["FRESH"])))
    assert result.failures["m"] is error
    assert [(r.name, r.owned, r.pending, r.fingerprint) for r in state.bindings()] == [("FRESH", True, True, None)]


def test_a_definite_refusal_forgets_only_the_intents_of_that_call(state: StateStore, workers: FakeWorkers) -> None:
    a = workers.add_script("script-a")
    workers.refuse[a] = CloudflareTransportError("timed out")
    Applier(workers, state).apply(make_plan(state, workers, desire("m", a, ["EARLIER"])))
    workers.not_deployed(a)
    result = Applier(workers, state).apply(make_plan(state, workers, desire("m", a, ["EARLIER", "FRESH"])))
    assert result.failures["m"].reason == "CloudflareNotDeployed(10215)"
    # EARLIER's first call may have been applied: its intent stays; FRESH was certainly not written.
    assert [(r.name, r.pending) for r in state.bindings()] == [("EARLIER", True)]


def test_no_call_is_made_when_the_intent_cannot_be_recorded(state: StateStore, workers: FakeWorkers) -> None:
    a = workers.add_script("script-a")
    the_plan = make_plan(state, workers, desire("m", a, ["FRESH"]))

    def broken(records: Sequence[BindingRecord]) -> None:
        raise StateError("state store: write failed: disk I/O error")

    state.record_bindings = broken  # type: ignore[method-assign]
    result = Applier(workers, state).apply(the_plan)
    assert workers.calls == []
    assert result.failures["m"].reason == "StateError"
    assert result.pushes[0].outcome == "error"


def test_an_unexpected_error_deleting_fails_that_script_only_and_logs_no_text(
    state: StateStore, workers: FakeWorkers
) -> None:
    a, b = workers.add_script("script-a"), workers.add_script("script-b")
    Applier(workers, state).apply(make_plan(state, workers, desire("on-a", a, ["OLD"]), desire("on-b", b, ["OLD"])))
    original = workers.delete_secret

    def broken_on_a(target: Target, name: str) -> None:
        if target == a:
            raise RuntimeError(f"boom with {CANARY}")
        original(target, name)

    workers.delete_secret = broken_on_a  # type: ignore[method-assign]
    gone = [MappingDesire(m, t, REF, 4, (), frozenset({"OLD"})) for m, t in (("on-a", a), ("on-b", b))]
    with capture_logs() as logs:
        result = Applier(workers, state, write_mode="single").apply(
            plan(gone, state.bindings(), Fingerprinter(state.hmac_key), Policy(on_delete="delete"))
        )
    assert {m: e.reason for m, e in result.failures.items()} == {"on-a": "InternalError"}
    assert workers.texts(b) == {}
    assert [(r.target, r.name) for r in state.bindings()] == [(a, "OLD")]
    assert [(e["script"], e["exc_type"]) for e in logs if e["event"] == "mapping.internal_error"] == [
        ("script-a", "RuntimeError")
    ]
    assert leaks(repr(logs) + repr(result)) == []
