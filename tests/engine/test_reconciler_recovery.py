"""Ownership across a crash between Cloudflare's confirmation and the state record (invariants 2, 3
and 5): the write intent makes the next cycle rewrite the binding as owned, once, without asking the
Worker (which would now list syncd's own write as pre-existing)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from syncd.engine.report import Action, Reason, Trigger
from syncd.engine.state import BindingRecord
from syncd.errors import CloudflareTransportError
from syncd.model import SecretBody, Target
from tests.engine.conftest import CANARY, leaks
from tests.engine.fakes import keys_mapping, make_settings
from tests.engine.test_reconciler import A, World, result


class Crash(BaseException):
    """syncd dies here: nothing after this point runs, nothing catches it."""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "state.sqlite3")
    yield w
    w.state.close()


def crash_when_recording_a_confirmed_push(world: World) -> None:
    original = world.state.record_bindings

    def record_bindings(records: Sequence[BindingRecord]) -> None:
        if any(not r.pending and r.pushed_at is not None for r in records):
            raise Crash
        original(records)

    world.state.record_bindings = record_bindings  # type: ignore[method-assign]


def owned(world: World) -> dict[str, tuple[bool, bool]]:
    """name -> (owned, pending)"""
    return {r.name: (r.owned, r.pending) for r in world.state.bindings()}


TWO_KEYS = {"k1": "ONE", "k2": "TWO"}


def test_a_crash_after_confirmation_costs_one_rewrite_and_the_binding_stays_owned_and_deletable(
    world: World,
) -> None:
    world.workers.add_script("script-a", FOREIGN="theirs")
    world.source.put("app", {"k1": CANARY, "k2": "two"})
    settings = make_settings([keys_mapping("m", "app", "script-a", TWO_KEYS)], on_delete="delete")
    crash_when_recording_a_confirmed_push(world)
    with pytest.raises(Crash):
        world.reconciler(settings).reconcile(trigger=Trigger.STARTUP)
    assert world.workers.texts(A) == {"FOREIGN": "theirs", "ONE": CANARY, "TWO": "two"}

    world.restart()
    world.reset_counts()
    report = world.reconciler(settings).reconcile(trigger=Trigger.STARTUP)
    assert report.ok
    assert [(c.operation, c.names) for c in world.workers.calls] == [("bulk", ("ONE", "TWO"))]  # no list
    assert {(c.binding, c.action, c.reason) for c in report.changes} == {
        ("ONE", Action.WRITE, Reason.CHANGED),
        ("TWO", Action.WRITE, Reason.CHANGED),
    }
    assert owned(world) == {"ONE": (True, False), "TWO": (True, False)}
    assert all(r.fingerprint is not None and r.pushed_at is not None for r in world.state.bindings())

    world.restart()
    world.reset_counts()
    steady = world.reconciler(settings).reconcile()
    assert steady.changes == ()
    assert world.workers.calls == []
    assert world.source.calls == [("metadata", "secret/app")]

    world.source.remove("app")
    report = world.reconciler(settings).reconcile()
    assert {(c.binding, c.reason) for c in report.changes} == {
        ("ONE", Reason.VAULT_DELETED),
        ("TWO", Reason.VAULT_DELETED),
    }
    assert world.workers.texts(A) == {"FOREIGN": "theirs"}
    assert leaks(world.path.read_bytes()) == []


def test_a_patch_that_timed_out_but_was_applied_stays_owned_and_is_pruned_later(world: World) -> None:
    world.source.put("app", {"k1": CANARY})
    before = make_settings([keys_mapping("m", "app", "script-a", {"k1": "OLD_NAME"})], prune=True)
    after = make_settings([keys_mapping("m", "app", "script-a", {"k1": "NEW_NAME"})], prune=True)
    original = world.workers.bulk_update

    def applied_then_timed_out(target: Target, changes: Mapping[str, SecretBody | None]) -> None:
        original(target, changes)
        raise CloudflareTransportError("Cloudflare PATCH .../secrets-bulk: timed out (ReadTimeout)")

    world.workers.bulk_update = applied_then_timed_out  # type: ignore[method-assign]
    reconciler = world.reconciler(before)
    first = reconciler.reconcile()
    assert result(first, "m").error_code == "CloudflareTransportError"
    assert owned(world) == {"OLD_NAME": (True, True)}

    world.workers.bulk_update = original  # type: ignore[method-assign]
    world.reset_counts()
    world.now += 600  # past the script's backoff (a timeout backs it off)
    second = reconciler.reconcile()
    assert second.ok
    assert [(c.operation, c.names) for c in world.workers.calls] == [("bulk", ("OLD_NAME",))]
    assert owned(world) == {"OLD_NAME": (True, False)}

    reconciler.update_settings(after)
    reconciler.reconcile()
    assert world.workers.texts(A) == {"NEW_NAME": CANARY}


def test_an_adopted_binding_is_still_never_deleted_after_a_crash(world: World) -> None:
    world.workers.add_script("script-a", ONE="theirs")
    world.source.put("app", {"k1": CANARY, "k2": "two"})
    settings = make_settings(
        [keys_mapping("m", "app", "script-a", TWO_KEYS)], initial_sync="missing-only", on_delete="delete"
    )
    crash_when_recording_a_confirmed_push(world)
    with pytest.raises(Crash):
        world.reconciler(settings).reconcile()

    world.restart()
    world.reset_counts()
    world.reconciler(settings).reconcile()
    assert [(c.operation, c.names) for c in world.workers.calls] == [("bulk", ("TWO",))]
    assert owned(world) == {"ONE": (False, False), "TWO": (True, False)}

    world.source.remove("app")
    report = world.reconciler(settings).reconcile()
    assert [(c.binding, c.action) for c in report.changes] == [("TWO", Action.DELETE)]
    assert world.workers.texts(A) == {"ONE": "theirs"}
