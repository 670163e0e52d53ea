"""Two small rate limits for what a hostile peer can make syncd do: read and log.

- ``TokenBucket``: ``rate`` units per second with bursts up to ``burst``; ``take(n)`` says how long
  to wait before ``n`` more units fit (the audit listener then pauses reading, so TCP pushes back).
- ``ThrottledLog``: one log line per key per ``every`` seconds, the lines held back counted in
  ``suppressed`` on the next one (401s on the ops server, refused audit connections): an attacker
  cannot flood the log, an operator still sees that it happens and how often.

Both are thread-safe and take their clock from outside (tests pass a fake one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class TokenBucket:
    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._level = self.burst
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, amount: float) -> float:
        """Take ``amount`` units (going into debt if need be); the seconds to wait until the debt is
        paid, 0 when there was enough."""
        with self._lock:
            now = self._clock()
            self._level = min(self.burst, self._level + (now - self._at) * self.rate)
            self._at = now
            self._level -= amount
            return 0.0 if self._level >= 0 else -self._level / self.rate


class ThrottledLog:
    def __init__(
        self,
        emit: Callable[..., Any],
        every: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        self._emit = emit
        self._every = every
        self._clock = clock
        self._max_keys = max_keys
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, event: str, key: str = "", **fields: Any) -> bool:
        """Log ``event`` unless one with this ``key`` was logged less than ``every`` seconds ago."""
        now = self._clock()
        with self._lock:
            slot = f"{event}|{key}"
            last = self._last.get(slot)
            if last is not None and now - last < self._every:
                self._held[slot] = self._held.get(slot, 0) + 1
                return False
            if len(self._last) >= self._max_keys:  # many peers: forget the oldest rather than grow
                oldest = min(self._last, key=self._last.__getitem__)
                self._last.pop(oldest)
                self._held.pop(oldest, None)
            self._last[slot] = now
            suppressed = self._held.pop(slot, 0)
        self._emit(event, suppressed=suppressed, **fields)
        return True


__all__ = ["ThrottledLog", "TokenBucket"]
