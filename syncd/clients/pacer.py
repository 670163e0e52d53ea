"""Client-side pacing for one Cloudflare credential (invariant 7: never exceed the account limit).

Cloudflare allows 1,200 requests per five minutes per user, counted across the dashboard, API keys
and tokens, and answers 429 (blocking everything for a while) when that is exceeded. One ``Pacer``
is shared by everything that uses the same credential. It combines three limits:

- our own sliding window: at most ``floor(limit * headroom)`` requests granted in any ``window``
  seconds (the headroom leaves room for humans and other tools on the same account);
- the server's view, from the ``Ratelimit: "default";r=<remaining>;t=<reset>`` header: when the
  account has fewer requests left than we think (someone else is using it), we stop at
  ``server_reserve`` remaining until the server's reset;
- a pause after a 429: ``pause_until`` makes every caller wait until ``Retry-After`` has passed.

``acquire`` blocks through the injected ``sleep`` (tests pass a fake clock and sleep), and raises
``RateBudgetExhausted`` at once when the wait would run past the caller's deadline.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from syncd.errors import CloudflareRateLimited


class RateBudgetExhausted(CloudflareRateLimited):
    """No request slot frees up before the caller's deadline. Raised before sending anything.

    A subclass of ``CloudflareRateLimited`` (so callers treat it as rate limiting) that the client
    never retries: waiting longer is exactly what the deadline forbids. ``retry_after`` says when a
    slot will be free.
    """

    retryable = False


class Pacer:
    def __init__(
        self,
        limit: int = 1200,
        window: float = 300.0,
        *,
        headroom: float = 0.9,
        server_reserve: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window <= 0 or not 0 < headroom <= 1:
            raise ValueError("Pacer needs limit >= 1, window > 0 and 0 < headroom <= 1")
        self.limit = limit
        self.window = window
        self.budget = max(1, math.floor(limit * headroom))
        # How many requests of the account's remaining budget we leave to others.
        self.server_reserve = limit - self.budget if server_reserve is None else server_reserve
        self.clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._granted: deque[float] = deque()
        self._paused_until = 0.0
        self._server_remaining: int | None = None
        self._server_reset_at = 0.0

    def __repr__(self) -> str:
        return f"Pacer(limit={self.limit}, window={self.window}, budget={self.budget})"

    # -- public API -------------------------------------------------------------------------

    def acquire(self, deadline: float | None = None) -> None:
        """Take one request slot, waiting (via ``sleep``) until one is free.

        ``deadline`` is on this pacer's clock. Raises ``RateBudgetExhausted`` without waiting
        when the slot would only be free after the deadline.
        """
        while True:
            with self._lock:
                now = self.clock()
                wait = self._wait_locked(now)
                if wait <= 0:
                    self._granted.append(now)
                    if self._server_remaining is not None:
                        self._server_remaining -= 1
                    return
            if deadline is not None and now + wait > deadline:
                raise RateBudgetExhausted(
                    f"Cloudflare rate budget: next request slot in {wait:.1f}s, past the deadline",
                    retry_after=wait,
                )
            self._sleep(wait)

    def pause_until(self, t: float) -> None:
        """Make every caller wait until ``t`` (this pacer's clock), e.g. after a 429."""
        with self._lock:
            self._paused_until = max(self._paused_until, t)

    def pause_for(self, seconds: float) -> None:
        self.pause_until(self.clock() + max(0.0, seconds))

    def observe_server_budget(self, remaining: int, reset: float) -> None:
        """Feed the server's ``Ratelimit`` header: ``remaining`` requests until ``reset`` seconds."""
        with self._lock:
            now = self.clock()
            self._server_remaining = max(0, remaining)
            self._server_reset_at = now + max(0.0, reset)

    def remaining(self) -> int:
        """Requests that could be made now without waiting (for a gauge)."""
        with self._lock:
            now = self.clock()
            self._expire_locked(now)
            if now < self._paused_until:
                return 0
            ours = self.budget - len(self._granted)
            server = self._server_allowance_locked(now)
            return max(0, ours if server is None else min(ours, server))

    def paused_for(self) -> float:
        """Seconds left of a pause imposed by ``pause_until`` (0 when none)."""
        with self._lock:
            return max(0.0, self._paused_until - self.clock())

    # -- internals --------------------------------------------------------------------------

    def _expire_locked(self, now: float) -> None:
        horizon = now - self.window
        while self._granted and self._granted[0] <= horizon:
            self._granted.popleft()

    def _server_allowance_locked(self, now: float) -> int | None:
        if self._server_remaining is None:
            return None
        if now >= self._server_reset_at:
            self._server_remaining = None
            return None
        return self._server_remaining - self.server_reserve

    def _wait_locked(self, now: float) -> float:
        """Seconds to wait before a slot is free (<= 0: free now)."""
        self._expire_locked(now)
        waits = [self._paused_until - now]
        if len(self._granted) >= self.budget:
            waits.append(self._granted[0] + self.window - now)
        server = self._server_allowance_locked(now)
        if server is not None and server <= 0:
            waits.append(self._server_reset_at - now)
        return max(waits)
