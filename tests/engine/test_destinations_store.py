"""The Secrets Store kind through the reconciler, with fakes: one listing, one POST for what is new,
PATCH by id, ownership by syncd's mark, adopt, the quota checked before anything is created."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.config import Settings
from syncd.engine.destinations_store import OWNER_MARK, SecretsStoreAdapter, owner_comment
from syncd.engine.reconciler import Reconciler
from syncd.engine.report import Action, CycleReport, Reason, Trigger
from syncd.engine.state import StateStore
from syncd.errors import SecretsStoreNotOwned
from syncd.model import DestinationKind, SecretBody, Target
from tests.engine.conftest import CANARY, CANARY_2, leaks
from tests.engine.fake_store import FakeStoreClient
from tests.engine.fakes import ACCOUNT, FakeSource, FakeWorkers, keys_mapping, make_settings

STORE = Target(ACCOUNT, "default_secrets_store", kind=DestinationKind.SECRETS_STORE)


def store_mapping(name: str, path: str, keys: dict[str, str], **target: Any) -> dict[str, Any]:
    return {
        "name": name,
        "vault": {"mount": "secret", "path": path},
        "target": {"secrets_store": "default_secrets_store", **target},
        "secret_text": {"keys": keys},
    }


class World:
    def __init__(self, state_path: Path, *, quota: int = 100) -> None:
        self.path = state_path
        self.source = FakeSource()
        self.workers = FakeWorkers()
        self.workers.add_script("api")
        self.client = FakeStoreClient(quota=quota)
        self.adapter = SecretsStoreAdapter(self.client)
        self.state = StateStore.open(state_path)

    def reconciler(self, settings: Settings) -> Reconciler:
        return Reconciler(
            settings, self.source, self.workers, self.state, destinations={DestinationKind.SECRETS_STORE: self.adapter}
        )

    def restart(self) -> None:
        """A new process: new state handle, a new adapter (nothing kept in memory)."""
        self.state.close()
        self.state = StateStore.open(self.path)
        self.adapter = SecretsStoreAdapter(self.client)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "state.sqlite3")
    yield w
    w.state.close()


def failure(report: CycleReport, mapping: str) -> str | None:
    (found,) = [r for r in report.results if r.mapping == mapping]
    return str(found.error_code) if found.error_code else None


def test_a_cycle_creates_in_one_post_then_patches_by_id_and_an_unchanged_world_costs_nothing(world: World) -> None:
    world.source.put("db", {"password": CANARY, "user": "app"})
    world.source.put("api", {"key": "k"})
    settings = make_settings(
        [
            store_mapping("db", "db", {"password": "db-password", "user": "DB_USER"}),
            store_mapping("api", "api", {"key": "api-key"}, scopes=["workers", "ai_gateway"]),
        ]
    )
    reconciler = world.reconciler(settings)

    first = reconciler.reconcile(trigger=Trigger.STARTUP)
    assert first.ok, [(r.mapping, r.error) for r in first.results]
    assert world.client.values() == {"db-password": CANARY, "DB_USER": "app", "api-key": "k"}
    assert [op for op, _ in world.client.calls] == ["find_store", "list", "quota", "create"]
    api = world.client.by_name("api-key")
    assert api is not None
    assert api.secret.comment == owner_comment("api") and api.secret.scopes == ("workers", "ai_gateway")
    assert world.workers.calls == []  # nothing went to any Worker

    world.client.calls.clear()
    assert reconciler.reconcile().ok
    assert world.client.calls == []  # an unchanged world: no Cloudflare call at all

    world.source.put("db", {"password": CANARY_2, "user": "app"})
    rotated = reconciler.reconcile()
    assert rotated.ok
    # The ids are known from the creation: one PATCH, no listing, no new POST.
    assert world.client.calls == [("update", "db-password")]
    assert world.client.values()["db-password"] == CANARY_2
    assert [(p.target, p.written) for p in rotated.pushes] == [(STORE, ("db-password",))]


def test_an_unowned_secret_of_the_same_name_fails_only_its_mapping_and_is_left_alone(world: World) -> None:
    world.client.add("db-password", "theirs", comment="made by the platform team")
    world.source.put("db", {"password": CANARY})
    world.source.put("api", {"key": CANARY_2})
    settings = make_settings(
        [
            store_mapping("db", "db", {"password": "db-password"}),
            store_mapping("api", "api", {"key": "api-key"}),
        ]
    )
    report = world.reconciler(settings).reconcile()

    assert failure(report, "db") == "SecretsStoreNotOwned"
    assert failure(report, "api") is None
    assert world.client.values() == {"db-password": "theirs", "api-key": CANARY_2}
    assert {r.name for r in world.state.bindings()} == {"api-key"}  # nothing recorded for the refused one
    (refused,) = [r for r in report.results if r.mapping == "db"]
    assert "adopt = true" in str(refused.error) and leaks(str(refused.error)) == []


def test_adopt_takes_an_existing_secret_over_with_syncds_mark_and_owns_it(world: World) -> None:
    world.client.add("db-password", "theirs", comment="made by hand")
    world.source.put("db", {"password": CANARY})
    settings = make_settings([store_mapping("db", "db", {"password": "db-password"}, adopt=True)])
    report = world.reconciler(settings).reconcile()

    assert report.ok
    held = world.client.by_name("db-password")
    assert held is not None and held.value == CANARY and held.secret.comment == owner_comment("db")
    assert world.client.count("create") == 0  # taken over by PATCH, not created again
    (record,) = world.state.bindings()
    assert record.owned and record.target == STORE


def test_over_the_quota_fails_the_creating_mappings_creates_nothing_and_patches_go_on(tmp_path: Path) -> None:
    world = World(tmp_path / "state.sqlite3", quota=3)
    world.source.put("old", {"v": "1"})
    reconciler = world.reconciler(make_settings([store_mapping("old", "old", {"v": "OLD"})]))
    assert reconciler.reconcile().ok
    world.client.calls.clear()
    world.client.add("someone-elses", "x")
    world.source.put("old", {"v": CANARY})
    world.source.put("new1", {"a": "1", "b": "2"})
    world.source.put("new2", {"c": "3"})
    settings = make_settings(
        [
            store_mapping("old", "old", {"v": "OLD"}),
            store_mapping("new1", "new1", {"a": "A", "b": "B"}),
            store_mapping("new2", "new2", {"c": "C"}),
        ]
    )
    report = world.reconciler(settings).reconcile()

    assert failure(report, "new1") == failure(report, "new2") == "SecretsStoreQuotaExceeded"
    assert failure(report, "old") is None
    assert world.client.values() == {"OLD": CANARY, "someone-elses": "x"}  # the PATCH went on
    assert world.client.count("create") == 0
    (new1,) = [r for r in report.results if r.mapping == "new1"]
    assert "2 of 3 in use" in str(new1.error) and "creating 3" in str(new1.error)
    world.state.close()


def test_prune_deletes_only_syncds_own_secrets_by_id(world: World) -> None:
    world.source.put("db", {"a": "1", "b": "2"})
    reconciler = world.reconciler(make_settings([store_mapping("db", "db", {"a": "A", "b": "B"})], prune=True))
    assert reconciler.reconcile().ok
    world.client.add("C", "theirs")
    reconciler.update_settings(make_settings([store_mapping("db", "db", {"a": "A"})], prune=True))
    report = reconciler.reconcile()

    assert report.ok
    assert world.client.values() == {"A": "1", "C": "theirs"}
    assert ("delete", "B") in world.client.calls
    assert [c.action for c in report.results[0].changes] == [Action.DELETE]


def test_after_state_loss_syncds_marked_secrets_are_its_own_again(world: World) -> None:
    world.source.put("db", {"a": CANARY})
    settings = make_settings([store_mapping("db", "db", {"a": "A"})], prune=True)
    assert world.reconciler(settings).reconcile().ok
    world.state.close()
    world.path.unlink()
    world.restart()
    world.client.calls.clear()

    report = world.reconciler(settings).reconcile()
    assert report.ok
    assert [op for op, _ in world.client.calls] == ["find_store", "list", "update"]  # no create, no quota
    (record,) = world.state.bindings()
    assert record.owned


def test_a_secret_deleted_by_hand_is_listed_again_and_created_on_the_next_write(world: World) -> None:
    world.source.put("db", {"a": "1"})
    reconciler = world.reconciler(make_settings([store_mapping("db", "db", {"a": "A"})]))
    assert reconciler.reconcile().ok
    world.client.remove("A")
    world.source.put("db", {"a": CANARY})
    report = reconciler.reconcile()

    assert report.ok
    assert world.client.values() == {"A": CANARY}
    assert [op for op, _ in world.client.calls][-3:] == ["update", "list", "create"]


def test_write_refuses_an_unmarked_name_before_sending_anything(world: World) -> None:
    world.client.add("A", "theirs")
    body = SecretBody({"name": "A", "type": "secret_text", "text": CANARY, "comment": owner_comment("m")})
    world.client.calls.clear()
    with pytest.raises(SecretsStoreNotOwned) as info:
        world.adapter.write(STORE, {"A": body})
    assert info.value.nothing_sent
    assert [op for op, _ in world.client.calls] == ["find_store", "list"]
    assert world.client.values() == {"A": "theirs"}


def test_a_store_and_a_script_in_one_cycle_each_get_their_own_write(world: World) -> None:
    world.source.put("shared", {"k": CANARY})
    settings = make_settings(
        [
            store_mapping("to-store", "shared", {"k": "shared-key"}),
            keys_mapping("to-script", "shared", "api", {"k": "SHARED_KEY"}),
        ]
    )
    report = world.reconciler(settings).reconcile()
    assert report.ok
    assert world.client.values() == {"shared-key": CANARY}
    assert world.workers.texts(Target(ACCOUNT, "api")) == {"SHARED_KEY": CANARY}
    assert {r.target.kind for r in world.state.bindings()} == {
        DestinationKind.SECRETS_STORE,
        DestinationKind.WORKER_SCRIPT,
    }
    assert OWNER_MARK in (world.client.by_name("shared-key") or pytest.fail("not created")).secret.comment
    changes = [c for r in report.results for c in r.changes]
    assert {c.reason for c in changes} == {Reason.NEW}
