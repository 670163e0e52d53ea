"""One backoff-with-jitter rule for every retry and reconnect in syncd.

The rule is stamina's (``stamina._core._compute_backoff``), so a stamina retry loop given the same
three numbers waits the same way::

    delay(n) = min(maximum, initial * 2 ** (n - 1) + jitter * u)    u uniform in [0, 1), n = 1, 2, ...

``n`` counts the failures so far (the first wait follows the first failure). The jitter is
additive, in seconds, and ``maximum`` is a hard cap: no wait is ever longer. At the cap the jitter
is gone, but what earlier jittered waits spread apart stays apart (each wait starts when the
previous attempt ended).

Who uses it, each with its own numbers (``Backoff``):

- the Cloudflare client's retries of 429-without-``Retry-After``, 5xx, timeouts, connection errors
  (``syncd.clients.cloudflare``), in stamina's loop;
- the Vault calls' retries of ``VaultUnavailable`` without ``Retry-After``
  (``syncd.clients.vault_calls``), in stamina's loop;
- the Vault token's failed renewals and logins (``syncd.clients.vault_auth``);
- the per-script backoff of Worker scripts that keep failing (``syncd.engine.backoff``);
- the Vault event subscriber's reconnects (``syncd.app.notify.vault_events``);
- the checks of a static role whose announced rotation has not happened yet
  (``syncd.app.service.rotation_schedule``, without jitter).

A wait that a ``Retry-After`` header asks for is not backoff: callers honour it exactly, without
jitter. Callers bounded by a deadline use ``Backoff.wait_within``: a wait after which no attempt
would fit before the deadline is not taken at all (the caller raises its last error instead).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_EXPONENT = 1000  # 2.0 ** 1000 is finite; any cap is reached long before


def backoff_delay(
    failures: int,
    *,
    initial: float,
    maximum: float,
    jitter: float,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after ``failures`` (>= 1) consecutive failures: the rule above."""
    if failures < 1:
        raise ValueError("backoff_delay: failures counts from 1")
    exponential = initial * 2.0 ** min(failures - 1, MAX_EXPONENT)
    return min(maximum, exponential + jitter * rng())


@dataclass(frozen=True)
class Backoff:
    """One caller's numbers for the rule: ``initial`` and ``maximum`` seconds, ``jitter`` seconds."""

    initial: float
    maximum: float
    jitter: float

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum or self.jitter < 0:
            raise ValueError("Backoff needs 0 < initial <= maximum and jitter >= 0")

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        return backoff_delay(failures, initial=self.initial, maximum=self.maximum, jitter=self.jitter, rng=rng)

    def nominal(self, failures: int) -> float:
        """The delay without jitter (what ``/status`` shows as the current backoff)."""
        return self.delay(failures, rng=lambda: 0.0)

    def failures_at_maximum(self) -> int:
        """The fewest failures whose delay is ``maximum`` whatever the jitter draws."""
        failures = 1
        while self.nominal(failures) < self.maximum:
            failures += 1
        return failures

    def wait_within(
        self,
        failures: int,
        *,
        now: float,
        deadline: float,
        reserve: float,
        rng: Callable[[], float] = random.random,
    ) -> float | None:
        """The delay, or None when after it less than ``reserve`` seconds would be left before
        ``deadline`` (same clock as ``now``): a wait that leaves no room for an attempt is not taken."""
        wait = self.delay(failures, rng)
        return None if now + wait + reserve > deadline else wait

    def stamina_arguments(self) -> dict[str, Any]:
        """The same numbers as ``stamina.retry_context`` keyword arguments."""
        return {"wait_initial": self.initial, "wait_max": self.maximum, "wait_jitter": self.jitter, "wait_exp_base": 2}


__all__ = ["Backoff", "backoff_delay"]
