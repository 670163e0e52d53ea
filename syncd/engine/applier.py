"""Carrying a plan out against Cloudflare, recording each change only once Cloudflare confirmed it.

Per target script, every write and delete of every mapping goes into one ``secrets-bulk`` call
(chunks of at most 100 names; one Worker version per call, invariant 4), or, with
``write_mode = "single"``, one PUT/DELETE per binding. A call's bindings are recorded in the state
store only after that call succeeded (invariant 2): a crash between write and record costs one
repeated write. A refused call fails the mappings that had changes in it and in the target's later
calls; other targets go on (invariant 6). So does an unexpected exception from the client: it is
logged by type and frame locations only (its text could hold a value) and reported as
``InternalError``.

Write intents (invariants 2 and 5): before a call that writes a binding syncd has no record of, the
planner's ``Write.intent`` (a ``pending`` record: ownership as decided, value unknown) is stored.
Should syncd die after Cloudflare applied the call but before the confirmed record replaced the
intent, the next cycle rewrites the binding with the recorded ownership instead of listing the
Worker, which would then show syncd's own write as pre-existing and lose the ownership. When
Cloudflare definitely refused the call (a 4xx other than 429), nothing was written, so the intents
of that call are forgotten again: keeping them would claim a name someone else may create before
syncd's next attempt. After a timeout, a transport error, a 429, a 5xx or an unexpected exception
the outcome is unknown and the intents stay.

Concurrency: up to ``concurrency`` scripts are written at once, each by one writer that sends that
script's calls one after another (so never two writes to one script in flight; the ``ScriptGate``
extends that across cycles, to writes left running by a cycle that ended at its deadline). All
writers share the client's pacer. Each writer runs in a copy of the cycle's context: its log lines
carry the cycle id and its client calls see the cycle's deadline (``syncd.deadlines``). The
applier returns at the latest ``GRACE_SECONDS`` after the deadline: a write still running then is
reported as ``CycleTimeout`` (its outcome is unknown to this cycle; if Cloudflare confirms it, the
writer still records it, which is true). A script in backoff (``ScriptBackoff``) is not written at
all; its mappings report ``ScriptBackedOff``. Writers record in the state store directly: it
serialises its writes itself (one SQLite connection opened with ``check_same_thread=False`` behind
an ``RLock``), and each writer records only its own script's bindings.

Staging (``on_undeployed = "stage"``): when a script refuses a write because its latest version is
not fully deployed (10214/10215), the changes of the mappings that stage (``stage_mappings``) still
pending for that script go into ONE ``stage_secrets`` call (a new undeployed version, annotated as
syncd's) instead; once confirmed they are recorded as written (so the next cycle does not write them
again) and ``ApplyResult.staged`` names the version per mapping. Mappings that report fail as before.
Nothing is ever deployed.

One structlog line per call (event ``push``): names, versions, outcome, duration, error code; never a
value.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import dataclasses
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import structlog

from syncd.engine.backoff import ScriptBackoff
from syncd.engine.destinations import MAX_NAMES_PER_CALL, Destinations, WorkerScriptAdapter
from syncd.engine.planner import Delete, Plan, TargetPlan, Write
from syncd.engine.ports import DestinationAdapter, WorkerSecrets, WorkerVersions
from syncd.engine.report import PushRecord
from syncd.engine.script_gate import ScriptGate
from syncd.engine.state import StateBackend
from syncd.errors import (
    CloudflareError,
    CloudflareNotDeployed,
    CloudflareRateLimited,
    CloudflareTransportError,
    CycleTimeout,
    InternalError,
    StateError,
    SyncdError,
)
from syncd.model import DestinationKind, SecretBody, Target
from syncd.model_versions import StagedVersion

GRACE_SECONDS = 1.0  # how long past the deadline the applier waits for writes in flight

log = structlog.get_logger("syncd.engine")


def frames_of(exc: BaseException) -> list[str]:
    """Where ``exc`` was raised, as "file:line in function": no exception text, no locals."""
    return [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__)]


def definitely_refused(error: SyncdError) -> bool:
    """Cloudflare answered and refused the whole call (a 4xx other than 429), or the adapter refused
    it before sending anything (``nothing_sent``): nothing was written."""
    if getattr(error, "nothing_sent", False) is True:
        return True
    return (
        isinstance(error, CloudflareError)
        and not isinstance(error, CloudflareRateLimited | CloudflareTransportError)
        and error.status is not None
        and 400 <= error.status < 500
        and error.status != 429
    )


@dataclass
class ApplyResult:
    pushes: list[PushRecord] = field(default_factory=list)
    failures: dict[str, SyncdError] = field(default_factory=dict)  # mapping -> first error
    pushed: set[str] = field(default_factory=set)  # mappings with at least one confirmed change
    staged: dict[str, StagedVersion] = field(default_factory=dict)  # mapping -> the undeployed version
    timed_out: bool = False

    def fail(self, mappings: Sequence[str], error: SyncdError) -> None:
        for mapping in mappings:
            self.failures.setdefault(mapping, error)


Step = Write | Delete


class Applier:
    def __init__(
        self,
        workers: WorkerSecrets,
        state: StateBackend,
        *,
        write_mode: Literal["bulk", "single"] = "bulk",
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        max_names_per_call: int = MAX_NAMES_PER_CALL,
        concurrency: int = 1,
        gate: ScriptGate | None = None,
        backoff: ScriptBackoff | None = None,
        versions: WorkerVersions | None = None,
        stage_mappings: frozenset[str] = frozenset(),
        destinations: Mapping[DestinationKind, DestinationAdapter] | None = None,
    ) -> None:
        """``gate`` and ``backoff`` should outlive the applier (the reconciler owns them): both
        matter across cycles. Without them each applier gets fresh ones. ``workers``, ``versions``,
        ``write_mode`` and ``max_names_per_call`` make the Worker script adapter; ``destinations``
        adds the adapters of other kinds (or replaces that one)."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        worker_scripts = WorkerScriptAdapter(
            workers, versions, write_mode=write_mode, max_names_per_call=max_names_per_call
        )
        self._destinations = Destinations({DestinationKind.WORKER_SCRIPT: worker_scripts, **(destinations or {})})
        self._state = state
        self._clock = clock
        self._monotonic = monotonic
        self._concurrency = concurrency
        self._gate = gate if gate is not None else ScriptGate()
        self._backoff = backoff
        self._stage_mappings = stage_mappings

    def apply(
        self,
        plan: Plan,
        *,
        vault_created: Mapping[str, datetime] | None = None,
        deadline: float | None = None,
    ) -> ApplyResult:
        """Execute ``plan``; ``deadline`` (on the injected clock) stops new calls once passed."""
        result = ApplyResult()
        self._record_state_only(plan, result)
        runnable: list[TargetPlan] = []
        for target_plan in plan.targets:
            blocked = None if self._backoff is None else self._backoff.blocked(target_plan.target)
            if blocked is not None:
                result.fail(target_plan.mappings, blocked)
            else:
                runnable.append(target_plan)
        for part in self._run(runnable, vault_created or {}, deadline):
            result.pushes.extend(part.pushes)
            result.pushed |= part.pushed
            result.staged.update(part.staged)
            for mapping, error in part.failures.items():
                result.failures.setdefault(mapping, error)
            result.timed_out = result.timed_out or part.timed_out
        return result

    def _run(
        self, plans: Sequence[TargetPlan], vault_created: Mapping[str, datetime], deadline: float | None
    ) -> list[ApplyResult]:
        """One result per target plan, in plan order; writers in a pool, bounded by the deadline."""
        parts = [ApplyResult() for _ in plans]
        if not plans:
            return parts
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(self._concurrency, len(plans)), thread_name_prefix="syncd-writer"
        )
        futures = [
            pool.submit(contextvars.copy_context().run, self._writer, plan, part, vault_created, deadline)
            for plan, part in zip(plans, parts, strict=True)
        ]
        wait = None if deadline is None else max(0.0, deadline - self._clock()) + GRACE_SECONDS
        done, _ = concurrent.futures.wait(futures, timeout=wait)
        pool.shutdown(wait=False, cancel_futures=True)  # stragglers finish on their own
        for index, future in enumerate(futures):
            if future in done and not future.cancelled():
                escaped = future.exception()
                if escaped is not None:  # not an Exception (the writer catches those): the process ends
                    raise escaped
            else:
                stale = ApplyResult(timed_out=True)
                stale.fail(
                    plans[index].mappings,
                    CycleTimeout(f"cycle deadline passed while writing to {plans[index].target}"),
                )
                parts[index] = stale
        return parts

    def _writer(
        self,
        target_plan: TargetPlan,
        result: ApplyResult,
        vault_created: Mapping[str, datetime],
        deadline: float | None,
    ) -> None:
        target = target_plan.target
        if deadline is not None and self._clock() >= deadline:
            result.timed_out = True
            result.fail(target_plan.mappings, CycleTimeout(f"cycle deadline passed before writing to {target}"))
            return
        if not self._gate.acquire(target, None if deadline is None else deadline - self._clock()):
            result.timed_out = True
            result.fail(
                target_plan.mappings,
                CycleTimeout(f"a write to {target} from an earlier cycle was still in flight at the cycle deadline"),
            )
            return
        try:
            error = self._apply_target(target_plan, result, vault_created, deadline)
            if self._backoff is not None:
                self._backoff.record(target, error)
        except Exception as exc:  # a bug must fail this target only (invariant 6)
            log_internal_for_target(exc, target_plan.mappings, target)
            result.fail(target_plan.mappings, InternalError.of(exc))
        finally:
            self._gate.release(target)

    def _record_state_only(self, plan: Plan, result: ApplyResult) -> None:
        try:
            self._state.record_bindings(plan.record_only)
            for record in plan.forget:
                self._state.forget_bindings(record.target, [record.name])
        except StateError as exc:
            result.fail(sorted({r.mapping for r in (*plan.record_only, *plan.forget)}), exc)

    def _calls(self, target_plan: TargetPlan) -> list[list[Step]]:
        steps: list[Step] = sorted(
            [*target_plan.writes, *target_plan.deletes], key=lambda s: (s.change.binding, s.change.action)
        )
        size = self._destinations.of(target_plan.target).max_changes_per_call()
        return [steps[i : i + size] for i in range(0, len(steps), size)]

    def _apply_target(
        self,
        target_plan: TargetPlan,
        result: ApplyResult,
        vault_created: Mapping[str, datetime],
        deadline: float | None,
    ) -> SyncdError | None:
        """The target's calls, one after another; the first error (None when all succeeded)."""
        calls = self._calls(target_plan)
        for index, steps in enumerate(calls):
            error: SyncdError | None = None
            if index and deadline is not None and self._clock() >= deadline:
                error = CycleTimeout(f"cycle deadline passed while writing to {target_plan.target}")
            else:
                error = self._call(target_plan, steps, result, vault_created)
            if error is not None:
                # Later calls of this target would most likely be refused the same way (not deployed,
                # auth): fail every mapping with a change not yet confirmed and leave the target.
                if isinstance(error, CycleTimeout):
                    result.timed_out = True
                left = [s for chunk in calls[index:] for s in chunk]
                if isinstance(error, CloudflareNotDeployed):
                    left, error = self._stage_refused(target_plan, left, error, result, vault_created)
                result.fail(sorted({s.change.mapping for s in left}), error)
                return error if left else None
        return None

    def _stage_refused(
        self,
        target_plan: TargetPlan,
        left: list[Step],
        refusal: SyncdError,
        result: ApplyResult,
        vault_created: Mapping[str, datetime],
    ) -> tuple[list[Step], SyncdError]:
        """Stage the steps of staging mappings in one call; the steps still failing and their error."""
        staging = [s for s in left if s.change.mapping in self._stage_mappings]
        if not staging or not self._destinations.of(target_plan.target).can_stage(target_plan.target):
            return left, refusal
        rest = [s for s in left if s.change.mapping not in self._stage_mappings]
        error = self._call(target_plan, staging, result, vault_created, stage=True)
        if error is not None:
            return left, error
        return rest, refusal

    def _call(
        self,
        target_plan: TargetPlan,
        steps: list[Step],
        result: ApplyResult,
        vault_created: Mapping[str, datetime],
        *,
        stage: bool = False,
    ) -> SyncdError | None:
        target = target_plan.target
        writes = [s for s in steps if isinstance(s, Write)]
        deletes = [s for s in steps if isinstance(s, Delete)]
        mappings = tuple(sorted({s.change.mapping for s in steps}))
        intents = [w.intent for w in writes if w.intent is not None]
        started = self._monotonic()
        error: SyncdError | None = None
        try:
            self._state.record_bindings(intents)
        except StateError as exc:
            error = exc  # without the intent a crash could lose the ownership: do not call
        else:
            error = self._send_guarded(target, writes, deletes, mappings, result if stage else None)
            if error is not None and intents and definitely_refused(error):
                self._forget_intents(target, [i.name for i in intents])
        seconds = self._monotonic() - started
        confirmed_at = None if error is not None else self._clock()
        if confirmed_at is not None:
            try:
                self._state.record_bindings([dataclasses.replace(w.record, pushed_at=confirmed_at) for w in writes])
                self._state.forget_bindings(target, [d.record.name for d in deletes])
            except StateError as exc:
                error = exc
            else:
                result.pushed.update(mappings)
        push = PushRecord(
            target=target,
            mappings=mappings,
            written=tuple(w.binding.name for w in writes),
            deleted=tuple(d.record.name for d in deletes),
            outcome="ok" if error is None else "error",
            seconds=seconds,
            confirmed_at=confirmed_at,
            vault_created={m: vault_created[m] for m in mappings if m in vault_created},
            error_code=None if error is None else error.reason,
        )
        result.pushes.append(push)
        self._log(push, steps)
        return error

    def _send_guarded(
        self,
        target: Target,
        writes: list[Write],
        deletes: list[Delete],
        mappings: Sequence[str],
        staged_into: ApplyResult | None = None,
    ) -> SyncdError | None:
        """``staged_into``: stage the changes (one undeployed version) and note it there."""
        try:
            if staged_into is not None:
                self._stage(target, writes, deletes, mappings, staged_into)
            else:
                self._destinations.of(target).write(target, _changes(writes, deletes))
        except SyncdError as exc:
            return exc
        except Exception as exc:  # a bug in the client must not end the cycle (invariant 6)
            log_internal_for_target(exc, mappings, target)
            return InternalError.of(exc)
        return None

    def _forget_intents(self, target: Target, names: list[str]) -> None:
        try:
            self._state.forget_bindings(target, names)
        except StateError as exc:
            # The intents stay: the next cycle rewrites those names as owned, as after a crash.
            log.error("state.record_failed", script=target.script, names=names, error_code=exc.reason, error=str(exc))

    def _stage(
        self, target: Target, writes: list[Write], deletes: list[Delete], mappings: Sequence[str], into: ApplyResult
    ) -> None:
        changes = _changes(writes, deletes)
        message = f"syncd: rotation of {', '.join(mappings)} (latest version not deployed; staged, not deployed)"
        staged = self._destinations.of(target).stage(target, changes, message)
        for mapping in mappings:
            into.staged[mapping] = staged
        log.info(
            "staged",
            script=target.script,
            account=target.account_id,
            mappings=list(mappings),
            version=staged.number,
            version_id=staged.id,
            names=sorted(changes),
        )

    @staticmethod
    def _log(push: PushRecord, steps: list[Step]) -> None:
        versions = sorted({s.change.vault_version for s in steps if s.change.vault_version is not None})
        fields = {
            "mappings": list(push.mappings),
            "account": push.target.account_id,
            "namespace": push.target.dispatch_namespace,
            "script": push.target.script,
            "written": list(push.written),
            "deleted": list(push.deleted),
            "vault_versions": versions,
            "outcome": push.outcome,
            "duration_s": round(push.seconds, 4),
            "error_code": push.error_code,
        }
        if push.outcome == "ok":
            log.info("push", **fields)
        else:
            log.warning("push", **fields)


def _changes(writes: Sequence[Write], deletes: Sequence[Delete]) -> dict[str, SecretBody | None]:
    changes: dict[str, SecretBody | None] = {w.binding.name: w.binding.body for w in writes}
    changes.update({d.record.name: None for d in deletes})
    return changes


def log_internal(exc: BaseException, mappings: Sequence[str], **where: str | None) -> None:
    """An unexpected exception: where it failed (frames only), no exception text and no locals,
    either could hold a value. ``where`` names the secret or the target."""
    log.error(
        "mapping.internal_error", mappings=list(mappings), exc_type=type(exc).__name__, frames=frames_of(exc), **where
    )


def log_internal_for_target(exc: BaseException, mappings: Sequence[str], target: Target) -> None:
    log_internal(exc, mappings, account=target.account_id, namespace=target.dispatch_namespace, script=target.script)
