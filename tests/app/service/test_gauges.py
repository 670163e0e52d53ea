"""The gauges the service sets from its parts."""

from __future__ import annotations

from syncd.app.service.gauges import Gauges
from syncd.app.service.metrics import Metrics
from syncd.engine.backoff import ScriptHealth
from syncd.model import Target
from tests.app.test_service import FakeMetrics, FakeTokens

TARGET = Target("0123456789abcdef0123456789abcdef", "w-slow")


class Budget:
    def remaining(self) -> int:
        return 77


def test_token_expiry_budget_and_readiness_are_set() -> None:
    metrics = FakeMetrics()
    Gauges(metrics, ready=lambda: True, tokens=FakeTokens(), rate_budget=Budget()).update()
    assert (metrics.expiry, metrics.budget, metrics.ready) == ([5000.0], [77], [True])


def test_without_a_token_manager_or_budget_only_readiness_is_set() -> None:
    metrics = FakeMetrics()
    Gauges(metrics, ready=lambda: False).update()
    assert (metrics.expiry, metrics.budget, metrics.ready) == ([], [], [False])


def test_scripts_in_backoff_are_exported() -> None:
    metrics = Metrics()
    health = [ScriptHealth(TARGET, 3, 120.0, 5000.0, "CloudflareServerError(500)")]
    Gauges(metrics, ready=lambda: True, script_health=lambda: health).update()
    assert (
        metrics.registry.get_sample_value("syncd_script_backoff", {"account": TARGET.account_id, "script": "w-slow"})
        == 1
    )
    assert metrics.registry.get_sample_value("syncd_ready") == 1
