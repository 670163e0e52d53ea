"""What the service drives, as protocols: wiring passes the real objects, tests pass fakes.

The subset of APScheduler's scheduler API the service uses is ``SchedulerLike``; the reconciler,
state store, metrics, Vault token manager and Cloudflare pacer appear as the few methods the
service calls on them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from syncd.app.leadership.sole import Leadership
from syncd.config import Settings
from syncd.engine.backoff import ScriptHealth
from syncd.engine.drift import DriftCorrection
from syncd.engine.report import CycleReport, Trigger
from syncd.model import SecretValue


class ReconcilerLike(Protocol):
    def update_settings(self, settings: Settings) -> None: ...

    def reconcile(
        self,
        *,
        trigger: Trigger = Trigger.INTERVAL,
        only_mappings: Collection[str] | None = None,
        deadline: float | None = None,
        dry_run: bool = False,
        corrections: Collection[DriftCorrection] = (),
    ) -> CycleReport: ...


class StateLike(Protocol):
    def all_mapping_status(self) -> Sequence[Any]: ...

    def reload(self) -> None: ...

    def close(self) -> None: ...


class MetricsLike(Protocol):
    def record_cycle(self, report: CycleReport) -> None: ...

    def set_ready(self, ready: bool) -> None: ...

    def set_vault_token_expiry(self, expires_at: float | None) -> None: ...

    def set_rate_budget(self, remaining: int) -> None: ...

    def configure_mappings(self, names: Iterable[str]) -> None: ...


@runtime_checkable
class BackoffMetrics(Protocol):
    """Metrics that export the scripts in backoff (``syncd.app.service.metrics.Metrics``)."""

    def set_script_backoff(self, scripts: Iterable[ScriptHealth]) -> None: ...


class DriftLike(Protocol):
    def run_due(self, exclusive: Callable[[], AbstractContextManager[bool]] | None = None) -> int: ...

    def note_cycle(self, report: CycleReport) -> None: ...

    def corrections(self) -> tuple[DriftCorrection, ...]: ...

    def update_settings(self, settings: Settings) -> None: ...


class TokenKeeperLike(Protocol):
    @property
    def expires_at(self) -> float | None: ...

    def ensure_token(self) -> Any: ...

    def maintain(self) -> float: ...

    def is_valid(self) -> bool: ...

    def current_token(self) -> SecretValue: ...


class RateBudgetLike(Protocol):
    def remaining(self) -> int: ...


class ServerLike(Protocol):
    def start(self) -> Any: ...

    def stop(self) -> None: ...


class SchedulerLike(Protocol):
    def add_job(self, func: Callable[..., Any], trigger: str | None = None, **kwargs: Any) -> Any: ...

    def reschedule_job(
        self, job_id: str, jobstore: str | None = None, trigger: str | None = None, **kw: Any
    ) -> Any: ...

    def start(self) -> None: ...

    def shutdown(self, wait: bool = True) -> None: ...


@dataclass
class ServiceParts:
    """Everything ``Service`` drives; ``closers`` run at shutdown (HTTP clients, sessions)."""

    reconciler: ReconcilerLike
    state: StateLike
    metrics: MetricsLike
    token_manager: TokenKeeperLike | None = None
    rate_budget: RateBudgetLike | None = None
    # The reconciler's ``script_health``: the scripts in backoff, for /status and metrics.
    script_health: Callable[[], Sequence[ScriptHealth]] | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
    # The Lease elector, or a SoleWriter without [leader_election] (syncd.app.leadership); None: tests.
    leadership: Leadership | None = None
    # Drift checks and staged-version watching (``syncd.app.service.drift_checks.DriftChecker``).
    drift: DriftLike | None = None


__all__ = [
    "BackoffMetrics",
    "DriftLike",
    "MetricsLike",
    "RateBudgetLike",
    "ReconcilerLike",
    "SchedulerLike",
    "ServerLike",
    "ServiceParts",
    "StateLike",
    "TokenKeeperLike",
]
