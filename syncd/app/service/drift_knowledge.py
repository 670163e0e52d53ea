"""What the drift checker knows of each watched destination (``ScriptKnowledge``), from the state
and its own notes: which bindings syncd owns there, when it last pushed one, which mappings are
staged, and what the previous check saw."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from syncd.config import Settings
from syncd.engine.drift import ScriptKnowledge
from syncd.engine.state import StateBackend
from syncd.model import Target


@dataclass
class Seen:
    """The checker's notes on one destination."""

    last_seen: int | None = None
    own_writes: int = 0
    due: float | None = None  # None: not scheduled yet


def all_knowledge(state: StateBackend, settings: Settings, seen: dict[Target, Seen]) -> dict[Target, ScriptKnowledge]:
    """Every watched destination: those with owned bindings (unless drift is off) and those with a
    staged mapping."""
    owned: dict[Target, set[str]] = {}
    since: dict[Target, float] = {}
    for record in state.bindings():
        if not record.owned or record.pending:
            continue
        owned.setdefault(record.target, set()).add(record.name)
        if record.pushed_at is not None:
            since[record.target] = max(since.get(record.target, 0.0), record.pushed_at)
    staged: dict[Target, dict[str, int]] = {}
    by_name = {m.name: m for m in settings.mappings}
    for status in state.all_mapping_status():
        number = status.staged_version
        if number is not None and status.mapping in by_name:
            staged.setdefault(settings.target_of(by_name[status.mapping]), {})[status.mapping] = number
    watched = {*owned, *staged} if settings.sync.drift != "off" else set(staged)
    return {
        target: _knowledge(target, owned.get(target, ()), since.get(target), staged.get(target, {}), seen)
        for target in sorted(watched)
    }


def knowledge_now(
    state: StateBackend, target: Target, mappings: Iterable[str], seen: dict[Target, Seen]
) -> ScriptKnowledge:
    """One destination as the state says it now: read after waiting for a cycle, whose writes (and
    their ``pushed_at``) are syncd's own. ``mappings``: those that target it."""
    owned: set[str] = set()
    since: float | None = None
    for record in state.bindings(target=target):
        if record.owned and not record.pending:
            owned.add(record.name)
            if record.pushed_at is not None:
                since = record.pushed_at if since is None else max(since, record.pushed_at)
    staged = {}
    for mapping in mappings:
        status = state.mapping_status(mapping)
        if status is not None and status.staged_version is not None:
            staged[mapping] = status.staged_version
    return _knowledge(target, owned, since, staged, seen)


def _knowledge(
    target: Target, owned: Iterable[str], since: float | None, staged: dict[str, int], seen: dict[Target, Seen]
) -> ScriptKnowledge:
    notes = seen.get(target, Seen())
    return ScriptKnowledge(
        target,
        frozenset(owned),
        notes.last_seen,
        since,
        # Before the first check every confirmed write is older than ``since``: none to discount.
        notes.own_writes if notes.last_seen is not None else 0,
        staged,
    )


__all__ = ["Seen", "all_knowledge", "knowledge_now"]
