"""The state store's behaviour, pinned for both backends: SQLite and Kubernetes Secrets.

The SQLite-only facts (file modes, WAL, migrations, the writer lock) stay in test_state.py and
test_state_lock.py; the Kubernetes-only ones (chunks, conflicts, writes per cycle) in
test_state_kubernetes.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from syncd.engine.state import BindingRecord, StateBackend, StateStore
from syncd.engine.state.kubernetes import KubernetesStateStore
from syncd.errors import StateError
from syncd.model import Target, VaultSecretRef
from tests.engine.conftest import ACCOUNT, REF, TARGET
from tests.engine.fake_secrets import FakeSecrets

OTHER_TARGET = Target(ACCOUNT, "edge-api", "customers")
KEY = b"k" * 32
NAMES = tuple(f"syncd-state-{i}" for i in range(4))

Opener = Callable[..., StateBackend]


def record(
    name: str = "API_KEY", *, target: Target = TARGET, mapping_name: str = "edge", **changes: object
) -> BindingRecord:
    base = BindingRecord(
        target=target,
        name=name,
        mapping=mapping_name,
        ref=REF,
        vault_version=7,
        fingerprint="f" * 64,
        shape="s" * 32,
        owned=True,
        pushed_at=1000.5,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "kubernetes"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a store on the same storage each time: a new process reading what the last one wrote."""
    if request.param == "sqlite":
        path = tmp_path / "state.sqlite3"

        def open_sqlite(*, exclusive: bool = True) -> StateBackend:
            return StateStore.open(path, exclusive=exclusive)

        return open_sqlite
    api = FakeSecrets(names=NAMES)

    def open_kubernetes(*, exclusive: bool = True) -> StateBackend:
        return KubernetesStateStore.open(api, NAMES, hmac_key=KEY, exclusive=exclusive)

    return open_kubernetes


@pytest.fixture
def store(opener: Opener) -> Iterator[StateBackend]:
    with opener() as opened:
        yield opened


# --- bindings ----------------------------------------------------------------------------------------


def test_binding_records_round_trip_with_every_field_also_through_a_new_process(
    store: StateBackend, opener: Opener
) -> None:
    records = [
        record("API_KEY"),
        record("ADOPTED", fingerprint=None, owned=False, pushed_at=None, vault_version=None),
        record("API_KEY", target=OTHER_TARGET, ref=VaultSecretRef("kv", "legacy/app")),
        record("INTENT", fingerprint=None, vault_version=None, pushed_at=None, pending=True),
    ]
    store.record_bindings(records)
    assert sorted(store.bindings(), key=repr) == sorted(records, key=repr)
    store.close()
    with opener() as reopened:
        assert sorted(reopened.bindings(), key=repr) == sorted(records, key=repr)


def test_bindings_filter_by_target_and_mapping(store: StateBackend) -> None:
    store.record_bindings(
        [record("A"), record("B", mapping_name="other"), record("A", target=OTHER_TARGET, mapping_name="other")]
    )
    assert [r.name for r in store.bindings(target=TARGET)] == ["A", "B"]
    assert [r.target for r in store.bindings(mapping="other")] == [TARGET, OTHER_TARGET]
    assert [(r.target, r.name) for r in store.bindings(target=OTHER_TARGET, mapping="other")] == [(OTHER_TARGET, "A")]
    assert store.bindings(target=Target(ACCOUNT, "nowhere")) == []


def test_record_bindings_replaces_the_record_of_the_same_target_and_name(store: StateBackend) -> None:
    store.record_bindings([record("A", vault_version=1)])
    store.record_bindings([record("A", vault_version=2, fingerprint="e" * 64)])
    (only,) = store.bindings()
    assert (only.vault_version, only.fingerprint) == (2, "e" * 64)


def test_record_bindings_is_all_or_nothing(store: StateBackend) -> None:
    store.record_bindings([record("KEEP")])
    broken = record("BROKEN", shape=None)
    with pytest.raises(StateError, match="write failed"):
        store.record_bindings([record("NEW"), broken])
    assert [r.name for r in store.bindings()] == ["KEEP"]


def test_forget_bindings_removes_only_those_names_on_that_target(store: StateBackend, opener: Opener) -> None:
    store.record_bindings([record("A"), record("B"), record("A", target=OTHER_TARGET)])
    store.forget_bindings(TARGET, ["A", "NOT_THERE"])
    assert [(r.target, r.name) for r in store.bindings()] == [(TARGET, "B"), (OTHER_TARGET, "A")]
    store.close()
    with opener() as reopened:
        assert [(r.target, r.name) for r in reopened.bindings()] == [(TARGET, "B"), (OTHER_TARGET, "A")]


def test_a_pending_intent_is_replaced_by_the_confirmed_record(store: StateBackend) -> None:
    intent = record(fingerprint=None, vault_version=None, pushed_at=None, pending=True)
    store.record_bindings([intent])
    assert store.bindings() == [intent]
    store.record_bindings([record()])
    (confirmed,) = store.bindings()
    assert confirmed == record()
    assert confirmed.pending is False


def test_a_write_intent_is_durable_when_record_bindings_returns(store: StateBackend, opener: Opener) -> None:
    intent = record(fingerprint=None, vault_version=None, pushed_at=None, pending=True)
    store.record_bindings([intent])
    reader = opener(exclusive=False)  # a new process, while this one still runs (and may die now)
    try:
        assert reader.bindings() == [intent]
    finally:
        reader.close()


# --- mapping status ----------------------------------------------------------------------------------


def success(store: StateBackend, at: float, *, version: int = 7, pushed: bool = True, config: str = "cfg1") -> None:
    store.record_mapping_result(
        "edge",
        at=at,
        config_fingerprint=config,
        version=version,
        in_sync=True,
        pushed=pushed,
        error_code=None,
        error=None,
    )


def failure(store: StateBackend, at: float, *, version: int = 8, config: str = "cfg2") -> None:
    store.record_mapping_result(
        "edge",
        at=at,
        config_fingerprint=config,
        version=version,
        in_sync=False,
        pushed=False,
        error_code="CloudflareNotDeployed(10215)",
        error="latest version of the Worker is not deployed",
    )


def test_success_records_version_config_and_times(store: StateBackend) -> None:
    success(store, 100.0)
    status = store.mapping_status("edge")
    assert status is not None
    assert (status.config_fingerprint, status.last_version, status.in_sync) == ("cfg1", 7, True)
    assert (status.last_success_at, status.last_attempt_at, status.last_pushed_at) == (100.0, 100.0, 100.0)
    assert (status.last_error_code, status.last_error) == (None, None)


def test_failure_keeps_the_last_success_and_what_it_applied(store: StateBackend, opener: Opener) -> None:
    success(store, 100.0)
    failure(store, 200.0)
    status = store.mapping_status("edge")
    assert status is not None
    assert (status.last_success_at, status.last_attempt_at, status.last_pushed_at) == (100.0, 200.0, 100.0)
    assert (status.config_fingerprint, status.last_version, status.in_sync) == ("cfg1", 7, False)
    assert status.last_error_code == "CloudflareNotDeployed(10215)"
    store.close()
    with opener() as reopened:
        assert reopened.mapping_status("edge") == status


def test_failure_before_any_success_leaves_success_fields_empty(store: StateBackend) -> None:
    failure(store, 50.0)
    status = store.mapping_status("edge")
    assert status is not None
    assert (status.last_success_at, status.config_fingerprint, status.last_version) == (None, None, None)
    assert status.last_attempt_at == 50.0


def test_success_after_failure_clears_the_error_and_keeps_last_push_when_nothing_pushed(store: StateBackend) -> None:
    success(store, 100.0)
    failure(store, 200.0)
    success(store, 300.0, version=8, pushed=False)
    status = store.mapping_status("edge")
    assert status is not None
    assert (status.last_error_code, status.last_error, status.in_sync) == (None, None, True)
    assert (status.last_success_at, status.last_pushed_at, status.last_version) == (300.0, 100.0, 8)


def test_all_mapping_status_is_sorted_and_remove_deletes_one(store: StateBackend, opener: Opener) -> None:
    for name in ("zeta", "alpha", "mid"):
        store.record_mapping_result(
            name, at=1.0, config_fingerprint=None, version=None, in_sync=True, pushed=False, error_code=None, error=None
        )
    store.remove_mapping_status("mid")
    assert [s.mapping for s in store.all_mapping_status()] == ["alpha", "zeta"]
    assert store.mapping_status("mid") is None
    store.close()
    with opener() as reopened:
        assert [s.mapping for s in reopened.all_mapping_status()] == ["alpha", "zeta"]


def test_mapping_names_unites_bindings_and_status(store: StateBackend) -> None:
    store.record_bindings([record("A", mapping_name="only-bindings")])
    success(store, 1.0)
    assert store.mapping_names() == {"only-bindings", "edge"}


# --- lifecycle ---------------------------------------------------------------------------------------


def test_a_closed_store_refuses_use(store: StateBackend) -> None:
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.bindings()
    store.close()  # closing twice is harmless


def test_a_reader_sees_the_records_and_refuses_writes(store: StateBackend, opener: Opener) -> None:
    store.record_bindings([record()])
    success(store, 1.0)
    with opener(exclusive=False) as reader:
        assert reader.read_only
        assert reader.bindings() == [record()]
        with pytest.raises(StateError, match="read-only"):
            reader.record_bindings([record("OTHER")])
        with pytest.raises(StateError, match="read-only"):
            success(reader, 2.0)


def test_concurrent_record_bindings_from_16_threads_lose_nothing(store: StateBackend, opener: Opener) -> None:
    threads, per_thread = 16, 25
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            start.wait(timeout=10)
            for n in range(per_thread):
                store.record_bindings([record(f"T{index}_{n}", mapping_name=f"m{index}", pushed_at=float(n))])
                store.bindings(target=TARGET)  # readers interleave with writers
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert errors == []
    assert not any(worker.is_alive() for worker in workers)
    wanted = {f"T{i}_{n}" for i in range(threads) for n in range(per_thread)}
    assert {r.name for r in store.bindings()} == wanted
    store.close()
    with opener() as reopened:
        assert {r.name for r in reopened.bindings()} == wanted


def test_a_staged_mapping_applies_its_version_and_keeps_the_staged_status_across_a_restart(
    store: StateBackend, opener: Opener
) -> None:
    success(store, 100.0)
    store.record_mapping_result(
        "edge",
        at=200.0,
        config_fingerprint="cfg2",
        version=8,
        in_sync=False,
        pushed=True,
        error_code="Staged",
        error="staged in version 12, not deployed",
        staged_version=12,
    )
    status = store.mapping_status("edge")
    assert status is not None
    assert (status.config_fingerprint, status.last_version, status.in_sync) == ("cfg2", 8, False)
    assert (status.last_error_code, status.staged_version, status.last_pushed_at) == ("Staged", 12, 200.0)
    store.close()
    with opener() as reopened:
        assert reopened.mapping_status("edge") == status


def test_source_versions_of_kv_and_static_role_sources_survive_a_restart(store: StateBackend, opener: Opener) -> None:
    from syncd.engine.state import MappingOutcome  # noqa: PLC0415 - issue 17's versions only

    versions = (("cfg", 3), ("db", "2026-12-07T07:00:00.123456789Z#0a1b2c3d4e5f6a7b"))
    store.record_mapping_results([MappingOutcome("edge", 100.0, "cfg1", None, True, True, None, None, None, versions)])
    store.close()
    again = opener(exclusive=True)
    try:
        status = again.mapping_status("edge")
        assert status is not None and status.source_versions == versions and status.last_version is None
    finally:
        again.close()
