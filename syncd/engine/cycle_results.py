"""Step 4 of a reconcile: what each mapping's cycle came to (``MappingResult``), from its work, the
plan and what the applier did: a timeout, a failure, a vanished source, a staged version, in sync."""

from __future__ import annotations

from collections import defaultdict

from syncd.engine.applier import ApplyResult
from syncd.engine.cycle_work import CycleWork, MappingWork
from syncd.engine.planner import Plan
from syncd.engine.report import Action, MappingResult
from syncd.engine.state import STAGED_CODE, BindingRecord
from syncd.errors import CycleTimeout


def mapping_results(cycle: CycleWork, the_plan: Plan, applied: ApplyResult) -> list[MappingResult]:
    """One result per configured mapping of the cycle, then per removed mapping that had changes."""
    results = []
    for work in cycle.works:
        changes = the_plan.changes_for(work.name) if work.desire is not None else ()
        code, error = work.error_code, work.error
        if code is None and not work.started:
            cycle.timed_out = True
            timeout = CycleTimeout("cycle deadline passed before this mapping was checked")
            code, error = timeout.reason, str(timeout)
        failure = applied.failures.get(work.name)
        if code is None and failure is not None:
            code, error = failure.reason, str(failure)
        if code is None and work.gone is not None:
            code, error = work.gone.reason, str(work.gone)
        if code == "CycleTimeout":  # a call the deadline did not let start (syncd.deadlines)
            cycle.timed_out = True
        staged_version = None
        if code is None:
            code, error, staged_version = _staged_status(work, applied)
        pending = any(c.action is not Action.ADOPT for c in changes)
        in_sync = code is None and not (cycle.dry_run and pending)
        results.append(
            MappingResult(
                work.name,
                work.target,
                work.mapping.vault.ref,
                in_sync,
                work.version,
                changes,
                code,
                error,
                staged_version,
                work.more_source_versions(),
                work.moved_sources(),
            )
        )
    results.extend(_removed_results(cycle, the_plan, applied))
    return results


def _removed_results(cycle: CycleWork, the_plan: Plan, applied: ApplyResult) -> list[MappingResult]:
    if not cycle.removed:
        return []
    removed = set(cycle.removed)
    by_mapping: dict[str, list[BindingRecord]] = defaultdict(list)
    for record in cycle.records:
        if record.mapping in removed:
            by_mapping[record.mapping].append(record)
    results = []
    for name in cycle.removed:
        changes = the_plan.changes_for(name)
        if not changes or not by_mapping.get(name):
            continue
        first = by_mapping[name][0]
        failure = applied.failures.get(name)
        results.append(
            MappingResult(
                name,
                first.target,
                first.ref,
                failure is None and not cycle.dry_run,
                first.vault_version,
                changes,
                None if failure is None else failure.reason,
                None if failure is None else str(failure),
            )
        )
    return results


def _staged_status(work: MappingWork, applied: ApplyResult) -> tuple[str | None, str | None, int | None]:
    """Code, reason and version for a mapping staged now, or staged before and not written since."""
    staged = applied.staged.get(work.name)
    if staged is not None:
        return (
            STAGED_CODE,
            f"staged in version {staged.number}, not deployed (version {staged.id} of {work.target.script}: its "
            "latest version was not fully deployed; the rollout is left to the team's deployment process)",
            staged.number,
        )
    status = work.status
    if status is not None and work.name not in applied.pushed and status.staged_version is not None:
        return status.last_error_code, status.last_error, status.staged_version
    return None, None, None


__all__ = ["mapping_results"]
