"""Composed values through whole cycles: templates over a KV secret and a database static role,
rotations of either, one call per script, the next announced rotation, and failures without values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from syncd.engine.reconciler import Reconciler
from syncd.engine.state import StateStore
from syncd.errors import VaultPermissionDenied
from syncd.model import VaultSecretRef
from tests.engine.conftest import CANARY, CANARY_2, leaks
from tests.engine.fakes import FakeSource, FakeWorkers, make_settings, target

URL = "postgres://{{ db.username }}:{{ db.password | urlencode }}@{{ cfg.host }}/app"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.open(tmp_path / "state.sqlite3")
    yield store
    store.close()


def app_db(name: str = "app-db", script: str = "app", **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "target": {"script": script},
        "sources": {
            "db": {"kind": "database", "mount": "database", "role": "app"},
            "cfg": {"mount": "secret", "path": "app/config"},
        },
        "templates": {"DATABASE_URL": URL},
        **more,
    }


class World:
    def __init__(self, state: StateStore, *mappings: dict[str, Any]) -> None:
        self.clock = 1_700_000_000.0
        self.source, self.workers = FakeSource(), FakeWorkers()
        self.source.now = lambda: self.clock
        self.workers.add_script("app")
        self.source.put_role("app", "app_user", CANARY, period=3600)
        self.source.put("app/config", {"host": "db.internal"})
        self.settings = make_settings(list(mappings or [app_db()]))
        self.reconciler = Reconciler(self.settings, self.source, self.workers, state, clock=lambda: self.clock)

    def url(self) -> str:
        return self.workers.texts(target("app"))["DATABASE_URL"]


def test_the_composed_binding_arrives_and_an_unchanged_world_reads_each_source_once(state: StateStore) -> None:
    world = World(state)
    report = world.reconciler.reconcile()
    assert report.ok
    assert world.url() == f"postgres://app_user:{CANARY}@db.internal/app"
    world.source.calls.clear()
    writes = len(world.workers.writes())

    again = world.reconciler.reconcile()

    assert again.ok and again.changes == ()
    assert sorted(world.source.calls) == [
        ("metadata", "secret/app/config"),
        ("static_creds", "database/static-creds/app"),  # a role's one read is its check
    ]
    assert len(world.workers.writes()) == writes


def test_a_rotation_of_either_source_rewrites_the_binding(state: StateStore) -> None:
    world = World(state)
    world.reconciler.reconcile()
    world.clock += 3600
    world.source.put_role("app", "app_user", CANARY_2, period=3600)

    rotated = world.reconciler.reconcile()

    assert rotated.ok and [c.binding for c in rotated.changes] == ["DATABASE_URL"]
    assert world.url() == f"postgres://app_user:{CANARY_2}@db.internal/app"
    world.source.put("app/config", {"host": "db2.internal"})
    moved = world.reconciler.reconcile()
    assert [c.binding for c in moved.changes] == ["DATABASE_URL"]
    assert world.url().endswith("@db2.internal/app")
    status = state.mapping_status("app-db")
    assert status is not None
    versions = dict(status.source_versions)
    assert versions["cfg"] == 2 and isinstance(versions["db"], str)
    assert str(versions["db"]).startswith("2023-11-14T23:13:20")  # last_vault_rotation, then a keyed digest
    assert leaks(repr(status)) == []


def test_the_next_announced_rotation_is_reported_per_mapping(state: StateStore) -> None:
    world = World(state, app_db(), app_db("other", "app", templates={"OTHER_URL": URL}))
    report = world.reconciler.reconcile()
    assert report.next_checks == {"app-db": world.clock + 3600, "other": world.clock + 3600}
    assert world.source.count("static_creds") == 1  # shared by both mappings


def test_values_changed_together_land_in_one_call_per_script(state: StateStore) -> None:
    world = World(
        state,
        app_db(templates={"DATABASE_URL": URL, "DB_USER": "{{ db.username }}", "DB_PASSWORD": "{{ db.password }}"}),
        {
            "name": "plain",
            "vault": {"mount": "secret", "path": "app/config"},
            "target": {"script": "app"},
            "secret_text": {"keys": {"host": "DB_HOST"}},
        },
    )
    world.reconciler.reconcile()
    before = len(world.workers.writes())
    world.clock += 3600
    world.source.put_role("app", "app_user2", CANARY_2)
    world.source.put("app/config", {"host": "db3.internal"})

    report = world.reconciler.reconcile()

    assert report.ok
    assert sorted(c.binding for c in report.changes) == ["DATABASE_URL", "DB_HOST", "DB_PASSWORD", "DB_USER"]
    assert len(world.workers.writes()) == before + 1  # one Worker version for all of them
    texts = world.workers.texts(target("app"))
    assert (texts["DB_USER"], texts["DB_PASSWORD"], texts["DB_HOST"]) == ("app_user2", CANARY_2, "db3.internal")


def test_a_mapping_of_one_static_role_records_its_version_apart_and_stays_quiet(state: StateStore) -> None:
    only_role = {
        "name": "role-only",
        "target": {"script": "app"},
        "sources": {"db": {"kind": "database", "role": "app"}},
        "templates": {"DB_PASSWORD": "{{ db.password }}"},
    }
    world = World(state, only_role)
    first = world.reconciler.reconcile()
    assert first.ok and [r.vault_version for r in first.results] == [None]
    status = state.mapping_status("role-only")
    assert status is not None and [name for name, _ in status.source_versions] == ["db"]
    assert world.reconciler.reconcile().changes == ()
    world.clock += 10
    world.source.put_role("app", "app_user", CANARY_2)
    assert [c.binding for c in world.reconciler.reconcile().changes] == ["DB_PASSWORD"]


def test_an_unknown_role_or_a_refused_read_fails_its_mappings_only(state: StateStore) -> None:
    plain = {
        "name": "plain",
        "vault": {"mount": "secret", "path": "app/config"},
        "target": {"script": "app"},
        "secret_text": {"keys": {"host": "DB_HOST"}},
    }
    world = World(state, app_db(), plain)
    del world.source.roles["app"]
    results = {r.mapping: r for r in world.reconciler.reconcile().results}
    assert results["app-db"].error_code == "VaultSecretNotFound"
    assert "database/static-creds/app" in (results["app-db"].error or "")
    assert results["plain"].in_sync
    world.source.put_role("app", "u", CANARY)
    ref = VaultSecretRef("database", "static-creds/app")
    world.source.errors[ref] = VaultPermissionDenied("permission denied", path=str(ref), status=403)
    results = {r.mapping: r for r in world.reconciler.reconcile().results}
    assert results["app-db"].error_code == "VaultPermissionDenied" and results["plain"].in_sync


@pytest.mark.parametrize(
    ("template", "data", "why"),
    [
        ("{{ db.password }}{{ cfg.port }}", {"host": "h"}, "key 'port' is missing from source 'cfg'"),
        ("{{ cfg.host | b64decode }}", {"host": CANARY_2}, "b64decode: the value of cfg.host is not base64"),
        ("{{ db.password }}" * 300, {"host": "h"}, "over Cloudflare's 5 KB limit"),
    ],
)
def test_a_template_failing_at_run_time_fails_that_mapping_only_without_a_value(
    state: StateStore, template: str, data: dict[str, Any], why: str
) -> None:
    plain = {
        "name": "plain",
        "vault": {"mount": "secret", "path": "other"},
        "target": {"script": "app"},
        "secret_text": {"keys": {"k": "K"}},
    }
    world = World(state, app_db(templates={"BROKEN": template}), plain)
    world.source.put("app/config", data)
    world.source.put("other", {"k": "v"})
    with capture_logs() as logs:
        report = world.reconciler.reconcile()
    results = {r.mapping: r for r in report.results}
    broken = results["app-db"]
    assert broken.error_code == "ValueRejected" and why in (broken.error or "")
    assert "BROKEN" in (broken.error or "")
    assert results["plain"].in_sync
    status = state.mapping_status("app-db")
    from syncd.app.service.metrics import Metrics  # noqa: PLC0415 - the app's view of a report

    metrics = Metrics()
    metrics.record_cycle(report)
    exposition = metrics.render()[0].decode()
    assert 'mapping="app-db",reason="ValueRejected"' in exposition  # the failure is counted, by its class only
    assert leaks(repr(report) + repr(logs) + repr(status) + exposition) == []


def test_plan_says_which_source_moved_and_never_a_value(state: StateStore) -> None:
    from syncd.app.cli.commands import format_plan, plan_as_json  # noqa: PLC0415 - the app's view of a result

    world = World(state)
    world.reconciler.reconcile()
    world.clock += 3600
    world.source.put_role("app", "app_user", CANARY_2)
    world.source.put("app/config", {"host": "db9.internal"})

    report = world.reconciler.reconcile(dry_run=True)

    [result] = report.results
    assert [name for name, _, _ in result.moved_sources] == ["db", "cfg"]
    lines = format_plan(report)
    assert lines[0].startswith("app-db (database/static-creds/app -> ")
    assert lines[0].endswith(
        ": 1 change(s) (db rotated 2023-11-14T22:13:20.000000Z -> rotated 2023-11-14T23:13:20.000000Z, cfg v1 -> v2)"
    )
    document = plan_as_json(report)["mappings"][0]
    assert document["sources_moved"][1] == {"source": "cfg", "from": "v1", "to": "v2"}
    assert leaks("\n".join(lines) + repr(document) + repr(report)) == []
