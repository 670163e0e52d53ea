"""Destination kinds: the applier routes each target's writes to the adapter of its kind, and the
state keeps bindings of different kinds apart even where account, name and binding name are equal."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

import pytest

from syncd.config import MappingSettings
from syncd.engine.applier import Applier
from syncd.engine.destinations import Destinations, WorkerScriptAdapter
from syncd.engine.fingerprint import Fingerprinter
from syncd.engine.planner import Policy, plan
from syncd.engine.state import StateStore
from syncd.errors import InternalError, SyncdError
from syncd.model import DestinationKind, SecretBody, Target
from syncd.model_versions import StagedVersion
from tests.engine.conftest import CANARY, leaks
from tests.engine.fakes import FakeWorkers, target
from tests.engine.test_applier import desire, make_plan

SCRIPT = target("shared")
ACCOUNT = SCRIPT.account_id
STORE = Target(ACCOUNT, "shared", kind=DestinationKind.SECRETS_STORE)  # a store with the script's name


class FakeStore:
    """A destination kind the engine has never heard of: it only follows the port."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def names(self, target: Target) -> set[str]:
        self.calls.append(("names", ()))
        return set(self.values)

    def prepare(self, target: Target, mapping: MappingSettings, body: SecretBody) -> SecretBody:
        return body

    def admit(
        self, target: Target, new: Mapping[str, Collection[str]], adopting: Collection[str]
    ) -> dict[str, SyncdError]:
        return {}

    def max_changes_per_call(self) -> int:
        return 1000

    def write(self, target: Target, changes: Mapping[str, SecretBody | None]) -> None:
        self.calls.append(("write", tuple(sorted(changes))))
        for name, body in changes.items():
            if body is None:
                self.values.pop(name, None)
            else:
                self.values[name] = body.reveal()["text"]

    def can_stage(self, target: Target) -> bool:
        return False

    def stage(self, target: Target, changes: Mapping[str, SecretBody | None], message: str) -> StagedVersion:
        raise AssertionError("a store never stages")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.open(tmp_path / "state.sqlite3")
    yield store
    store.close()


def test_each_target_goes_to_the_adapter_of_its_kind_and_keeps_its_own_records(
    state: StateStore, tmp_path: Path
) -> None:
    workers = FakeWorkers()
    workers.add_script("shared")
    store = FakeStore()
    the_plan = make_plan(state, workers, desire("on-script", SCRIPT, ["API_KEY"]))
    # The store's names come from its adapter, as the reconciler asks them.
    store_plan = plan(
        [desire("on-store", STORE, ["API_KEY"], text=CANARY + "-store")],
        state.bindings(),
        Fingerprinter(state.hmac_key),
        Policy(),
        remote_names={STORE: store.names(STORE)},
    )
    applier = Applier(workers, state, destinations={DestinationKind.SECRETS_STORE: store})

    first = applier.apply(the_plan)
    second = applier.apply(store_plan)

    assert not first.failures and not second.failures
    assert workers.texts(SCRIPT) == {"API_KEY": CANARY}
    assert store.values == {"API_KEY": CANARY + "-store"}
    assert store.calls[-1] == ("write", ("API_KEY",))
    state.close()
    with StateStore.open(tmp_path / "state.sqlite3") as reopened:
        records = {(r.target.kind, r.mapping) for r in reopened.bindings()}
        assert records == {(DestinationKind.WORKER_SCRIPT, "on-script"), (DestinationKind.SECRETS_STORE, "on-store")}
        assert [r.target for r in reopened.bindings(target=STORE)] == [STORE]
        assert leaks((tmp_path / "state.sqlite3").read_bytes().decode("latin-1")) == []


def test_a_kind_without_an_adapter_fails_its_mappings_only_with_an_internal_error(state: StateStore) -> None:
    workers = FakeWorkers()
    workers.add_script("shared")
    the_plan = plan(
        [desire("on-store", STORE, ["API_KEY"]), desire("on-script", SCRIPT, ["OTHER"])],
        [],
        Fingerprinter(state.hmac_key),
        Policy(),
        remote_names={STORE: set(), SCRIPT: set()},
    )
    result = Applier(workers, state).apply(the_plan)
    assert set(result.failures) == {"on-store"}
    assert isinstance(result.failures["on-store"], InternalError)
    assert workers.texts(SCRIPT) == {"OTHER": CANARY}


def test_single_write_mode_is_one_call_per_binding_and_bulk_at_most_100_names() -> None:
    workers = FakeWorkers()
    workers.add_script("shared")
    single = WorkerScriptAdapter(workers, write_mode="single")
    bulk = WorkerScriptAdapter(workers)
    assert (single.max_changes_per_call(), bulk.max_changes_per_call()) == (1, 100)
    assert not bulk.can_stage(SCRIPT)  # no versions client
    routed = Destinations({DestinationKind.WORKER_SCRIPT: bulk})
    assert routed.of(SCRIPT) is bulk
    with pytest.raises(InternalError, match="secrets_store"):
        routed.of(STORE)
