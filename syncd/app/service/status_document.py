"""The JSON the operations endpoint serves: ``/healthz`` (alive), ``/readyz`` (ready) and
``/status`` (per mapping and per script, the last cycle, the sync mode, the leadership). No value
ever appears in them: state records hold versions and keyed fingerprints only."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from syncd.app.service.cycle_outcomes import CycleHistory
from syncd.app.service.leader_role import LeaderRole
from syncd.app.service.parts import StateLike, TokenKeeperLike
from syncd.app.service.running import Lifetime, SettingsInForce
from syncd.engine.backoff import ScriptHealth
from syncd.engine.report import CycleReport

MAX_CYCLE_AGE_INTERVALS = 3  # /healthz: a cycle must have finished within 3 intervals + the timeout


def _plain(value: Any) -> Any:
    """A JSON-friendly form of a state record (a dataclass or a plain object)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return dict(value)
    return {k: v for k, v in vars(value).items() if not k.startswith("_")}


def _last_cycle(report: CycleReport) -> dict[str, Any]:
    return {
        "cycle_id": report.cycle_id,
        "trigger": report.trigger,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "ok": report.ok,
        "timed_out": report.timed_out,
        "pushes": len(report.pushes),
        "failed": [
            {"mapping": r.mapping, "error_code": r.error_code, "error": r.error} for r in report.results if r.failed
        ],
    }


def _script(health: ScriptHealth) -> dict[str, Any]:
    return {
        "destination": health.target.as_json(),  # "script" below: the name, also of a Secrets Store
        "account": health.target.account_id,
        "namespace": health.target.dispatch_namespace,
        "script": health.target.script,
        "state": health.state,
        "consecutive_failures": health.consecutive_failures,
        "backoff_seconds": health.backoff_seconds,
        "next_retry_at": health.next_retry_at,
        "next_retry_at_iso": datetime.fromtimestamp(health.next_retry_at, UTC).isoformat(timespec="seconds"),
        "last_error_code": health.last_error_code,
    }


class StatusDocument:
    def __init__(
        self,
        settings: SettingsInForce,
        *,
        lifetime: Lifetime,
        history: CycleHistory,
        abandoned_since: Callable[[], float | None],
        leader: LeaderRole,
        state: StateLike,
        sync_mode: Callable[[], dict[str, Any]],
        tokens: TokenKeeperLike | None = None,
        script_health: Callable[[], Sequence[ScriptHealth]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._lifetime = lifetime
        self._history = history
        self._abandoned_since = abandoned_since
        self._leader = leader
        self._state = state
        self._sync_mode = sync_mode
        self._tokens = tokens
        self._script_health = script_health
        self._clock = clock

    def max_cycle_age(self) -> float:
        settings = self._settings()
        configured = settings.server.healthz_max_cycle_age_seconds
        if configured is not None:
            return configured
        return MAX_CYCLE_AGE_INTERVALS * settings.sync.interval_seconds + settings.sync.cycle_timeout_seconds

    def healthz(self) -> tuple[bool, dict[str, Any]]:
        """Alive: no abandoned cycle, and a cycle finished recently (or the start was recent)."""
        now = self._clock()
        history = self._history.snapshot()
        since = history.last_cycle_end if history.last_cycle_end is not None else self._lifetime.started_at
        limit = self.max_cycle_age()
        age = None if since is None else now - since
        problems = []
        if self._abandoned_since() is not None:
            problems.append("a cycle passed its hard deadline and is still running")
        if age is not None and age > limit and self._leader.leading():  # followers run no cycle
            problems.append(f"no cycle finished for {age:.0f}s (limit {limit:.0f}s)")
        if self._lifetime.stopped:
            problems.append("stopped")
        body = {"status": "ok" if not problems else "unhealthy", "last_cycle_age_seconds": age, "problems": problems}
        return not problems, body

    def readyz(self) -> tuple[bool, dict[str, Any]]:
        """Ready: the startup cycle ran, the Vault token is valid, not shutting down."""
        problems = []
        if not self._history.snapshot().startup_done and self._leader.leading():  # a follower is ready as it runs
            problems.append("startup reconciliation has not finished")
        if self._lifetime.stopping:
            problems.append("shutting down")
        if self._tokens is not None and not self._tokens.is_valid():
            problems.append("no valid Vault token")
        return not problems, {"status": "ready" if not problems else "not ready", "problems": problems}

    def status(self) -> dict[str, Any]:
        report = self._history.snapshot().last_report
        settings = self._settings()
        targets = {m.name: settings.target_of(m).as_json() for m in settings.mappings}
        mappings = [  # staged_version: a field
            {**_plain(s), "destination": targets.get(s.mapping)} for s in self._state.all_mapping_status()
        ]
        return {
            "started_at": self._lifetime.started_at,
            "mappings_configured": [m.name for m in settings.mappings],
            "mappings": mappings,
            "scripts": self.scripts(),
            "last_cycle": None if report is None else _last_cycle(report),
            "sync_mode": self._sync_mode(),
            "leadership": self._leader.status(),
        }

    def scripts(self) -> list[dict[str, Any]]:
        """The scripts in backoff (healthy ones are not listed): ``state``, failures, next retry."""
        if self._script_health is None:
            return []
        return [_script(h) for h in self._script_health()]


__all__ = ["StatusDocument"]
