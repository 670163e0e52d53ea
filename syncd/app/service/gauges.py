"""The gauges the service sets from what its parts know: Vault token expiry, the Cloudflare rate
budget left, the scripts in backoff, readiness. Updated after every cycle and token upkeep."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from syncd.app.service.parts import BackoffMetrics, MetricsLike, RateBudgetLike, TokenKeeperLike
from syncd.engine.backoff import ScriptHealth


class Gauges:
    def __init__(
        self,
        metrics: MetricsLike,
        *,
        ready: Callable[[], bool],
        tokens: TokenKeeperLike | None = None,
        rate_budget: RateBudgetLike | None = None,
        script_health: Callable[[], Sequence[ScriptHealth]] | None = None,
    ) -> None:
        self._metrics = metrics
        self._ready = ready
        self._tokens = tokens
        self._rate_budget = rate_budget
        self._script_health = script_health

    def update(self) -> None:
        metrics = self._metrics
        if self._tokens is not None:
            metrics.set_vault_token_expiry(self._tokens.expires_at)
        if self._rate_budget is not None:
            metrics.set_rate_budget(self._rate_budget.remaining())
        if self._script_health is not None and isinstance(metrics, BackoffMetrics):  # test fakes may not be
            metrics.set_script_backoff(self._script_health())
        metrics.set_ready(self._ready())


__all__ = ["Gauges"]
