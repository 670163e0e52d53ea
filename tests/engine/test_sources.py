"""Mappings of several sources: each distinct source is checked once per cycle, a mapping is
computed anew when any of its sources moved (reading the others it needs once), and the state
records every source's version, so an unchanged world stays one metadata read per source."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.config import MappingSettings, Settings, VaultSource
from syncd.engine.reconciler import Reconciler
from syncd.engine.state import StateStore
from tests.engine.conftest import CANARY
from tests.engine.fakes import FakeSource, FakeWorkers, keys_mapping, make_settings, target


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.open(tmp_path / "state.sqlite3")
    yield store
    store.close()


def with_sources(settings: Settings, name: str, *more: VaultSource) -> Settings:
    mappings = tuple(
        dataclasses.replace(m, more_sources=more) if m.name == name else m for m in settings.mappings
    )
    return settings.model_copy(update={"mapping": mappings})


def composed_world() -> tuple[FakeSource, FakeWorkers, Settings]:
    source, workers = FakeSource(), FakeWorkers()
    workers.add_script("script-a")
    source.put("app/creds", {"password": CANARY})
    source.put("app/host", {"host": "db.internal"})
    settings = with_sources(
        make_settings(
            [
                keys_mapping("composed", "app/creds", "script-a", {"password": "PASSWORD"}),
                keys_mapping("host-only", "app/host", "script-a", {"host": "HOST"}),
            ]
        ),
        "composed",
        VaultSource("secret", "app/host", name="cfg"),
    )
    return source, workers, settings


def test_each_distinct_source_costs_one_metadata_read_and_an_unchanged_world_no_read(state: StateStore) -> None:
    source, workers, settings = composed_world()
    reconciler = Reconciler(settings, source, workers, state)
    assert reconciler.reconcile().ok
    assert sorted(p for op, p in source.calls if op == "read") == ["secret/app/creds", "secret/app/host"]
    composed = state.mapping_status("composed")
    assert composed is not None and composed.source_versions == (("cfg", 1),)
    source.calls.clear()

    report = reconciler.reconcile()

    assert report.ok and report.changes == ()
    assert sorted(source.calls) == [("metadata", "secret/app/creds"), ("metadata", "secret/app/host")]


def test_a_rotation_of_any_source_recomputes_its_mappings_reading_each_source_once(state: StateStore) -> None:
    source, workers, settings = composed_world()
    reconciler = Reconciler(settings, source, workers, state)
    reconciler.reconcile()
    source.calls.clear()
    source.put("app/host", {"host": "db2.internal"})  # only the second source of "composed" moves

    report = reconciler.reconcile()

    assert report.ok
    reads = sorted(p for op, p in source.calls if op == "read")
    assert reads == ["secret/app/creds", "secret/app/host"]  # host once for both mappings, creds for composed
    results = {r.mapping: r for r in report.results}
    assert results["composed"].source_versions == (("cfg", 2),)
    assert results["composed"].vault_version == 1
    assert workers.texts(target("script-a"))["HOST"] == "db2.internal"
    status = state.mapping_status("composed")
    assert status is not None and status.source_versions == (("cfg", 2),) and status.last_version == 1


def test_a_vanished_second_source_fails_its_mapping_only(state: StateStore) -> None:
    source, workers, settings = composed_world()
    settings = with_sources(settings, "composed", VaultSource("secret", "app/missing", name="cfg"))
    report = Reconciler(settings, source, workers, state).reconcile()
    results = {r.mapping: r for r in report.results}
    assert results["composed"].error_code == "VaultSecretNotFound"
    assert results["host-only"].in_sync


def test_one_source_mappings_keep_their_config_digest() -> None:
    plain = keys_mapping("m", "app", "s", {"k": "K"})
    mapping = MappingSettings.from_table(plain)
    assert mapping.sources == (mapping.vault,) and mapping.vault.name == "vault"
    assert '"sources"' not in mapping.canonical_json()
    composed = dataclasses.replace(mapping, more_sources=(VaultSource("secret", "other", name="cfg"),))
    assert composed.canonical_json() != mapping.canonical_json()
