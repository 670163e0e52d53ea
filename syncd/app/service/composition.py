"""The service's own parts, assembled around what ``ServiceParts`` brings (the reconciler, the state,
the metrics, the token manager, the elector, the drift checker).

``wiring.build_service`` builds those from the settings and hands them to ``Service``, which calls
``compose`` here; tests hand ``Service`` fakes instead and get the very same assembly. Each part has
one job and is tested alone: ``triggers``, ``cycle_runner``, ``cycle_outcomes``, ``sync_mode``,
``drift_job``, ``token_upkeep``, ``gauges``, ``leader_role``, ``reload``, ``status_document``,
``lifecycle``; ``schedule`` names their jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from syncd.app.service.cycle_outcomes import CycleBookkeeping, CycleHistory
from syncd.app.service.cycle_runner import CycleRunner
from syncd.app.service.drift_job import DriftJob
from syncd.app.service.gauges import Gauges
from syncd.app.service.leader_role import LeaderRole
from syncd.app.service.lifecycle import Lifecycle
from syncd.app.service.parts import SchedulerLike, ServerLike, ServiceParts
from syncd.app.service.reload import Reloader
from syncd.app.service.rotation_schedule import RotationSchedule
from syncd.app.service.running import Lifetime, SettingsInForce
from syncd.app.service.schedule import Schedule
from syncd.app.service.status_document import StatusDocument
from syncd.app.service.sync_mode import SyncMode
from syncd.app.service.token_upkeep import TokenUpkeep
from syncd.app.service.triggers import TriggerQueue
from syncd.config import LoggingSettings, Settings
from syncd.engine.report import CycleReport, Trigger


@dataclass(frozen=True)
class ServiceCore:
    settings: SettingsInForce
    runner: CycleRunner
    triggers: TriggerQueue
    sync_mode: SyncMode
    leader: LeaderRole
    reloader: Reloader
    status: StatusDocument
    lifecycle: Lifecycle


def compose(
    settings: Settings,
    config_path: Path,
    parts: ServiceParts,
    *,
    clock: Callable[[], float],
    scheduler: SchedulerLike,
    make_server: Callable[[], ServerLike] | None,
    loader: Callable[[Path], Settings],
    apply_logging: Callable[[LoggingSettings], None],
    hang_slack_seconds: float,
) -> ServiceCore:
    in_force = SettingsInForce(settings)
    lifetime = Lifetime()
    schedule = Schedule(scheduler)
    history = CycleHistory()
    tokens = parts.token_manager

    # The parts call each other back (a finished cycle updates the gauges, which ask the status
    # document, which asks the runner): these reach the three built further down.
    runner: CycleRunner
    triggers: TriggerQueue
    lifecycle: Lifecycle

    def run_cycle(trigger: Trigger, only: set[str] | None = None) -> CycleReport | None:
        return runner.run(trigger, only)

    def run_job(trigger: Trigger, only: set[str] | None = None) -> CycleReport | None:
        return runner.run_job(trigger, only)

    def request_sweep() -> None:
        triggers.request(None, Trigger.INTERVAL)

    def request_exit(code: int) -> None:
        lifecycle.request_exit(code)

    def abandoned_since() -> float | None:
        return runner.abandoned_since

    leader = LeaderRole(
        parts.leadership, state=parts.state, schedule=schedule, run_cycle=run_job, request_exit=request_exit
    )
    mode = SyncMode(
        in_force, parts.metrics, run_cycle=run_job, request_sweep=request_sweep, lifetime=lifetime, clock=clock
    )
    triggers = TriggerQueue(schedule, run_cycle, lifetime=lifetime, on_lost=mode.note_lost_cycle)
    status = StatusDocument(
        in_force,
        lifetime=lifetime,
        history=history,
        abandoned_since=abandoned_since,
        leader=leader,
        state=parts.state,
        sync_mode=mode.snapshot,
        tokens=tokens,
        script_health=parts.script_health,
        clock=clock,
    )
    gauges = Gauges(
        parts.metrics,
        ready=lambda: status.readyz()[0],
        tokens=tokens,
        rate_budget=parts.rate_budget,
        script_health=parts.script_health,
    )
    upkeep = (
        None if tokens is None else TokenUpkeep(tokens, schedule, lifetime=lifetime, after_maintenance=gauges.update)
    )
    rotations = RotationSchedule(scheduler, lambda names: triggers.request(names, Trigger.SCHEDULED), clock=clock)

    def note_results(report: CycleReport) -> None:
        mode.note_results(report)
        rotations.note(report)  # a check just after each rotation Vault announced (static roles)

    outcomes = CycleBookkeeping(
        history,
        parts.metrics,
        note_results=note_results,
        update_gauges=gauges.update,
        drift=parts.drift,
        clock=clock,
    )
    runner = CycleRunner(
        parts.reconciler,
        outcomes,
        settings=in_force,
        lifetime=lifetime,
        leading=leader.leading,
        prepare=upkeep.ensure if upkeep is not None else _nothing,
        corrections=parts.drift.corrections if parts.drift is not None else tuple,
        clock=clock,
        hang_slack_seconds=hang_slack_seconds,
    )
    drift_job = None
    if parts.drift is not None:
        drift_job = DriftJob(
            parts.drift, between_cycles=runner.between_cycles, leading=leader.leading, lifetime=lifetime
        )
    appliers = [*_reload_appliers(parts, in_force, schedule, apply_logging), rotations.follow_reload]
    reloader = Reloader(config_path, in_force, loader=loader, appliers=appliers)
    lifecycle = Lifecycle(
        settings=in_force,
        config_path=str(config_path),
        parts=parts,
        lifetime=lifetime,
        schedule=schedule,
        runner=runner,
        triggers=triggers,
        sync_mode=mode,
        leader=leader,
        reload=reloader.reload,
        make_server=make_server,
        token_upkeep=upkeep,
        drift_job=drift_job,
        clock=clock,
    )
    return ServiceCore(in_force, runner, triggers, mode, leader, reloader, status, lifecycle)


def _nothing() -> None:
    pass


def _reload_appliers(
    parts: ServiceParts,
    in_force: SettingsInForce,
    schedule: Schedule,
    apply_logging: Callable[[LoggingSettings], None],
) -> list[Callable[[Settings, Settings], None]]:
    """What a reload does with valid settings, in this order: the engine and the drift checks take
    them for their next run, the metrics learn the mappings, the settings come into force (a
    trigger of a new mapping is accepted from then on), the jobs follow the new timing, the log
    its new level and format."""
    drift = parts.drift

    def engine(old: Settings, new: Settings) -> None:
        parts.reconciler.update_settings(new)
        if drift is not None:
            drift.update_settings(new)

    def metrics(old: Settings, new: Settings) -> None:
        parts.metrics.configure_mappings([m.name for m in new.mappings])

    def come_into_force(old: Settings, new: Settings) -> None:
        in_force.replace(new)

    def timing(old: Settings, new: Settings) -> None:
        schedule.follow_reload(old, new, drift=drift is not None)

    def logging(old: Settings, new: Settings) -> None:
        if old.logging != new.logging:
            apply_logging(new.logging)

    return [engine, metrics, come_into_force, timing, logging]


__all__ = ["ServiceCore", "compose"]
