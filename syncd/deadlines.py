"""The time a cycle has left, handed down to every client call without threading it through each port.

The reconciler opens ``deadline_scope(seconds_left)`` around a cycle; every network call made in
that context (the cycle's own thread or a pool worker running in a copy of its context) reads
``time_left()`` and bounds itself by it: its retries, its ``Retry-After`` and pacer waits, and the
timeout of each attempt. Outside any scope ``time_left()`` is infinite and the clients keep their
own configured budgets.

Policy (one for Vault and Cloudflare): an attempt is **started only while at least
``MIN_ATTEMPT_SECONDS`` (or the client's own timeout, if smaller) remain**, and then with its
timeout clipped to the time left. So a call near the deadline is not started at all (it fails with
``CycleTimeout`` before sending anything), and one that is started cannot outlive the deadline by
more than the transport's own slack. Clipping rather than refusing any call whose full timeout does
not fit keeps the end of a cycle useful: a write usually answers in about a second, far below the
15 s timeout.

The scope holds a ``time.monotonic`` instant, so wall-clock jumps and each client's own clock
(tests inject fake ones) do not matter: clients convert "seconds left" onto their own clock.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Iterator

from syncd.errors import CycleTimeout

MIN_ATTEMPT_SECONDS = 0.5

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("syncd_deadline", default=None)


@contextlib.contextmanager
def deadline_scope(seconds_left: float | None) -> Iterator[None]:
    """Bound every client call in this context to ``seconds_left`` from now (None: no bound).

    Nested scopes only ever shorten the bound.
    """
    if seconds_left is None:
        yield
        return
    at = time.monotonic() + seconds_left
    outer = _deadline.get()
    token = _deadline.set(at if outer is None else min(at, outer))
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left() -> float:
    """Seconds until the current scope's deadline (may be negative); ``math.inf`` outside a scope."""
    at = _deadline.get()
    return math.inf if at is None else at - time.monotonic()


def attempt_timeout(timeout: float, what: str, *, minimum: float = MIN_ATTEMPT_SECONDS) -> float:
    """The timeout for one attempt started now: ``timeout`` clipped to the time left.

    Raises ``CycleTimeout`` (nothing is sent) when less than ``min(minimum, timeout)`` is left.
    """
    left = time_left()
    if left < min(minimum, timeout):
        raise CycleTimeout(f"{what}: not started, {max(0.0, left):.1f}s left before the cycle deadline")
    return min(timeout, left)


__all__ = ["MIN_ATTEMPT_SECONDS", "attempt_timeout", "deadline_scope", "time_left"]
