"""Between the sources and the plan: what each destination kind says about the desired bindings.

- ``prepare_bodies``: each desired body as its kind keeps it (``DestinationAdapter.prepare``; a
  store secret adds its scopes and syncd's mark), so that fingerprints, shapes and writes see it.
- ``admit_new_names``: for the names that have no record yet, the destination may refuse a mapping
  (``DestinationAdapter.admit``; a store: a name it holds unowned, or creations past its quota).
  A refused mapping fails this cycle and nothing of it is written (invariant 6: the others go on).
  A pre-existing name that a mapping adopts (``adopt = true``) is taken over: the planner sees it
  as absent, so it is written and owned.

Neither asks which kind it talks to.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from syncd.engine.applier import log_internal_for_target
from syncd.engine.cycle_work import CycleWork
from syncd.engine.destinations import Destinations
from syncd.errors import SyncdError
from syncd.model import Target


def prepare_bodies(cycle: CycleWork, destinations: Destinations) -> None:
    for work in cycle.works:
        desire = work.desire
        if desire is None:
            continue
        try:
            adapter = destinations.of(work.target)
            bindings = tuple(
                dataclasses.replace(b, body=adapter.prepare(b.target, work.mapping, b.body)) for b in desire.bindings
            )
        except SyncdError as exc:
            work.fail(exc)
            continue
        work.desire = dataclasses.replace(desire, bindings=bindings)


def admit_new_names(cycle: CycleWork, destinations: Destinations, remote: dict[Target, set[str]]) -> None:
    """``remote``: the names listed per target (``DestinationAdapter.names``); adopted names leave it."""
    if not remote:
        return
    known = {(r.target, r.name) for r in cycle.records}
    new: dict[Target, dict[str, set[str]]] = defaultdict(dict)
    works = {w.name: w for w in cycle.works}
    for work in cycle.works:
        if work.desire is None:
            continue
        for b in work.desire.bindings:
            if b.target in remote and (b.target, b.name) not in known:
                new[b.target].setdefault(work.name, set()).add(b.name)
    for target, wanted in sorted(new.items()):
        adopting = {m for m in wanted if works[m].mapping.target.adopt}
        try:
            refused = destinations.of(target).admit(target, wanted, adopting)
        except SyncdError as exc:
            refused = dict.fromkeys(wanted, exc)
        except Exception as exc:  # a bug in the client fails this target only (invariant 6)
            log_internal_for_target(exc, sorted(wanted), target)
            for name in wanted:
                works[name].fail_internal(exc)
            continue
        for name, error in refused.items():
            if name in works:
                works[name].fail(error)
        taken = {n for m in adopting - refused.keys() for n in wanted[m]}
        if taken:
            remote[target] = remote[target] - taken
