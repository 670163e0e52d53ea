"""The Vault token's upkeep: the maintenance job reschedules itself when the manager says (or retries
after a failure), stops with the service, updates the gauges; a login failure before a cycle is
logged and left to the cycle."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from syncd.app.service.running import Lifetime
from syncd.app.service.schedule import TOKEN_JOB, Schedule
from syncd.app.service.token_upkeep import TOKEN_RETRY_SECONDS, TokenUpkeep
from syncd.errors import VaultAuthError
from tests.app.test_service import FakeTokens, RecordingScheduler


class FailingTokens(FakeTokens):
    def maintain(self) -> float:
        raise VaultAuthError("login refused by auth/approle")

    def ensure_token(self) -> None:
        raise VaultAuthError("login refused by auth/approle")


def upkeep(tokens: FakeTokens, lifetime: Lifetime | None = None) -> tuple[TokenUpkeep, RecordingScheduler, list[str]]:
    scheduler, updates = RecordingScheduler(), []
    keeper = TokenUpkeep(
        tokens, Schedule(scheduler), lifetime=lifetime or Lifetime(), after_maintenance=lambda: updates.append("g")
    )
    return keeper, scheduler, updates


def seconds_until(run_date: datetime) -> float:
    return (run_date - datetime.now(UTC)).total_seconds()


def test_the_job_runs_at_once_then_when_the_manager_says() -> None:
    tokens = FakeTokens(next_in=42.0)
    keeper, scheduler, updates = upkeep(tokens)
    keeper.start()
    assert "run_date" not in scheduler.jobs[TOKEN_JOB].options
    scheduler.run(TOKEN_JOB)
    assert tokens.maintained == 1 and updates == ["g"]
    assert seconds_until(scheduler.jobs[TOKEN_JOB].options["run_date"]) == pytest.approx(42.0, abs=5)


def test_a_failed_maintenance_is_logged_and_retried() -> None:
    keeper, scheduler, updates = upkeep(FailingTokens())
    keeper.start()
    with capture_logs() as logs:
        scheduler.run(TOKEN_JOB)
    assert [e["error_code"] for e in logs if e["event"] == "vault token maintenance failed"] == ["VaultAuthError"]
    assert seconds_until(scheduler.jobs[TOKEN_JOB].options["run_date"]) == pytest.approx(TOKEN_RETRY_SECONDS, abs=5)
    assert updates == ["g"]


def test_a_stopping_service_schedules_no_further_maintenance() -> None:
    lifetime = Lifetime()
    keeper, scheduler, _ = upkeep(FakeTokens(), lifetime)
    keeper.start()
    lifetime.begin_stopping()
    scheduler.run(TOKEN_JOB)
    assert TOKEN_JOB not in scheduler.jobs


def test_a_login_failure_before_a_cycle_is_logged_not_raised() -> None:
    keeper, _, _ = upkeep(FailingTokens())
    with capture_logs() as logs:
        keeper.ensure()
    assert [e["error_code"] for e in logs if e["event"] == "vault login failed before the cycle"] == ["VaultAuthError"]
