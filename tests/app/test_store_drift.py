"""Store drift inside the service's drift checker: a changed ``modified`` of an owned store secret
becomes a correction of that secret only, one listing per store per interval, never a versions call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.app.service.drift_checks import DriftChecker
from syncd.app.service.store_drift import StoreDriftCheck
from syncd.engine.destinations_store import SecretsStoreAdapter
from syncd.engine.reconciler import Reconciler
from syncd.engine.report import Trigger
from syncd.engine.state import StateStore
from syncd.model import DestinationKind, Target
from syncd.model_versions import StagedVersion, WorkerDeployment, WorkerVersion
from tests.engine.conftest import CANARY
from tests.engine.fake_store import FakeStoreClient
from tests.engine.fakes import ACCOUNT, FakeSource, FakeWorkers, make_settings
from tests.engine.test_destinations_store import store_mapping

STORE = Target(ACCOUNT, "default_secrets_store", kind=DestinationKind.SECRETS_STORE)


class Budget:
    budget = 1200
    window = 300.0

    def __init__(self) -> None:
        self.clock: Callable[[], float] = lambda: 0.0

    def remaining(self) -> int:
        return self.budget


class NoVersions:
    """A store is never asked for Worker versions."""

    def list_versions(self, target: Target, *, newer_than: int | None = None) -> list[WorkerVersion]:
        raise AssertionError(f"versions of {target}")

    def version(self, target: Target, version_id: str) -> WorkerVersion:
        raise AssertionError(f"version of {target}")

    def current_deployment(self, target: Target) -> WorkerDeployment | None:
        raise AssertionError(f"deployment of {target}")

    def stage_secrets(self, target: Target, changes: object, message: str) -> StagedVersion:
        raise AssertionError("no staging")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.open(tmp_path / "state.sqlite3")
    yield store
    store.close()


def test_a_hand_edit_of_one_store_secret_corrects_that_secret_once_per_interval(state: StateStore) -> None:
    source, client = FakeSource(), FakeStoreClient()
    adapter = SecretsStoreAdapter(client)
    source.put("db", {"a": CANARY, "b": "2"})
    settings = make_settings([store_mapping("db", "db", {"a": "A", "b": "B"})], drift="correct")
    reconciler = Reconciler(
        settings, source, FakeWorkers(), state, destinations={DestinationKind.SECRETS_STORE: adapter}
    )
    assert reconciler.reconcile().ok
    requested: list[set[str]] = []
    now = [10_000.0]
    checker = DriftChecker(
        settings,
        NoVersions(),
        state,
        Budget(),
        request_cycle=requested.append,
        clock=lambda: now[0],
        store=StoreDriftCheck(adapter),
    )
    assert checker.run_due() == 1  # the first check sees syncd's own writes: no drift
    assert requested == [] and checker.corrections() == ()

    client.hand_edit("B", "typed-by-hand")
    client.calls.clear()
    assert checker.run_due() == 0  # not due again within the interval: no listing
    assert client.calls == []
    now[0] += settings.sync.drift_check_interval_seconds
    assert checker.run_due() == 1
    assert [op for op, _ in client.calls] == ["list"]
    assert requested == [{"db"}]
    (correction,) = checker.corrections()
    assert (correction.target, correction.names) == (STORE, frozenset({"B"}))

    report = reconciler.reconcile(trigger=Trigger.DRIFT, corrections=checker.corrections())
    assert [p.written for p in report.pushes] == [("B",)]
    assert client.values()["B"] == "2"
    checker.note_cycle(report)
    assert checker.corrections() == ()
