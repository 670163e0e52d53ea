"""The Vault token's upkeep: a login before a cycle when the token is gone, and the maintenance
job (renew, or log in again) that runs again whenever the token manager says."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from syncd.app.service.parts import TokenKeeperLike
from syncd.app.service.running import Lifetime
from syncd.app.service.schedule import TOKEN_JOB, Schedule
from syncd.errors import SyncdError

log = structlog.get_logger("syncd.service")

TOKEN_RETRY_SECONDS = 30.0  # after a failed maintenance
MIN_DELAY_SECONDS = 1.0


class TokenUpkeep:
    def __init__(
        self,
        tokens: TokenKeeperLike,
        schedule: Schedule,
        *,
        lifetime: Lifetime,
        after_maintenance: Callable[[], None] = lambda: None,
    ) -> None:
        """``after_maintenance``: the gauges (token expiry among them) are updated then."""
        self._tokens = tokens
        self._schedule = schedule
        self._lifetime = lifetime
        self._after = after_maintenance

    def start(self) -> None:
        self._schedule.once(self.maintain, TOKEN_JOB, replace=True)

    def ensure(self) -> None:
        """Before a cycle: log in if there is no valid token. A failure is the cycle's to report."""
        try:
            self._tokens.ensure_token()
        except SyncdError as exc:
            log.error("vault login failed before the cycle", error_code=exc.reason, error=str(exc))

    def maintain(self) -> None:
        """The job: renew or log in again, then schedule the next run."""
        try:
            delay = max(MIN_DELAY_SECONDS, float(self._tokens.maintain()))
        except SyncdError as exc:
            log.error("vault token maintenance failed", error_code=exc.reason, error=str(exc))
            delay = TOKEN_RETRY_SECONDS
        self._after()
        if self._lifetime.stopping:
            return
        self._schedule.once(self.maintain, TOKEN_JOB, delay=delay, replace=True)


__all__ = ["TOKEN_RETRY_SECONDS", "TokenUpkeep"]
