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

**Slow start.** Before any ``Ratelimit`` header has been seen, after ``stale_after`` seconds without
an answer (idle), or once the server's window has reset since the last header, the pacer does not
know what others left of the account's budget. Then the first request that takes a ``slot`` goes
alone (the *probe*) and every other caller waits for its answer, whose ``Ratelimit`` header says
how many may follow (the server-budget limit above then releases them, or holds them until the
server's reset). So concurrent writers never start together into a budget another client has
spent: with 2 of 300 requests left, one request goes, learns ``r=1``, and the others wait for the
reset instead of meeting a 429 (which on Cloudflare blocks every call of the user for 5 minutes).
A probe that gets no answer (a transport error, the cycle's deadline) ends without teaching
anything: the next request probes again; one that is not answered within ``probe_timeout`` counts
as lost. An answer without a ``Ratelimit`` header counts as knowledge for ``stale_after`` seconds
(that server tells nothing a probe could learn).

``slot(deadline)`` is how the client takes a request slot and reports the answer; plain
``acquire`` takes one without ever being the probe (it still waits for a probe in flight). Both
block through the injected ``sleep`` (tests pass a fake clock and sleep) and raise
``RateBudgetExhausted`` at once when the wait would run past the caller's deadline; waiting for a
probe's answer is a wait on a condition (real time), bounded by the deadline and ``probe_timeout``.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

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
        stale_after: float = 10.0,
        probe_timeout: float = 30.0,
    ) -> None:
        if limit < 1 or window <= 0 or not 0 < headroom <= 1:
            raise ValueError("Pacer needs limit >= 1, window > 0 and 0 < headroom <= 1")
        if stale_after < 0 or probe_timeout <= 0:
            raise ValueError("Pacer needs stale_after >= 0 and probe_timeout > 0")
        self.limit = limit
        self.window = window
        self.budget = max(1, math.floor(limit * headroom))
        # How many requests of the account's remaining budget we leave to others.
        self.server_reserve = limit - self.budget if server_reserve is None else server_reserve
        self.clock = clock
        self._sleep = sleep
        self.stale_after = stale_after
        self.probe_timeout = probe_timeout
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)  # a probe ended
        self._granted: deque[float] = deque()
        self._paused_until = 0.0
        self._server_remaining: int | None = None
        self._server_reset_at = 0.0
        self._known_until = -math.inf  # what the server told is trusted until then (slow start after)
        self._probe_until: float | None = None  # a probe is in flight; counted as lost at this time
        self._probe_waiters = 0

    def __repr__(self) -> str:
        return f"Pacer(limit={self.limit}, window={self.window}, budget={self.budget})"

    # -- public API -------------------------------------------------------------------------

    def acquire(self, deadline: float | None = None) -> None:
        """Take one request slot, waiting (via ``sleep``) until one is free; never the probe.

        ``deadline`` is on this pacer's clock. Raises ``RateBudgetExhausted`` without waiting
        when the slot would only be free after the deadline.
        """
        self._take(deadline, may_probe=False)

    @contextlib.contextmanager
    def slot(self, deadline: float | None = None) -> Iterator[PacerSlot]:
        """Take one request slot for a request whose answer is reported to the ``PacerSlot``
        (``answered``); when the pacer's knowledge is stale, this request is the probe."""
        slot = PacerSlot(self, self._take(deadline, may_probe=True))
        try:
            yield slot
        finally:
            if slot.probe:
                self._end_probe()

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
            self._known_until = min(now + self.stale_after, self._server_reset_at)

    def observe_answer_without_budget(self) -> None:
        """An answer came without a ``Ratelimit`` header: nothing a probe could learn for a while."""
        with self._lock:
            self._known_until = max(self._known_until, self.clock() + self.stale_after)

    def waiting_for_probe(self) -> int:
        """Callers waiting for a slow-start probe's answer (0 when no probe is in flight)."""
        with self._lock:
            return self._probe_waiters

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

    def _take(self, deadline: float | None, *, may_probe: bool) -> bool:
        """Grant a slot (True when it is the probe), waiting as the limits and a probe say."""
        while True:
            with self._lock:
                now = self.clock()
                wait = self._wait_locked(now)
                if wait <= 0 and not self._probing_locked(now):
                    probe = may_probe and now >= self._known_until
                    if probe:
                        self._probe_until = now + self.probe_timeout
                    self._granted.append(now)
                    if self._server_remaining is not None:
                        self._server_remaining -= 1
                    return probe
                if wait <= 0:
                    self._wait_for_probe_locked(now, deadline)
                    continue
            if deadline is not None and now + wait > deadline:
                raise RateBudgetExhausted(
                    f"Cloudflare rate budget: next request slot in {wait:.1f}s, past the deadline",
                    retry_after=wait,
                )
            self._sleep(wait)

    def _probing_locked(self, now: float) -> bool:
        return self._probe_until is not None and now < self._probe_until

    def _wait_for_probe_locked(self, now: float, deadline: float | None) -> None:
        assert self._probe_until is not None
        until = self._probe_until if deadline is None else min(self._probe_until, deadline)
        if until <= now:  # the deadline: the probe's answer would come too late for this caller
            raise RateBudgetExhausted(
                "Cloudflare rate budget: waiting for the first request's Ratelimit answer, past the deadline",
                retry_after=self._probe_until - now,
            )
        self._probe_waiters += 1
        try:
            self._answered.wait(until - now)
        finally:
            self._probe_waiters -= 1

    def _end_probe(self) -> None:
        with self._lock:
            self._probe_until = None
            self._answered.notify_all()

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


class PacerSlot:
    """One granted request; ``answered`` reports what its answer said of the server's budget."""

    __slots__ = ("_pacer", "probe")

    def __init__(self, pacer: Pacer, probe: bool) -> None:
        self._pacer = pacer
        self.probe = probe  # this request goes alone; the others wait for its answer

    def answered(self, budget: tuple[int, float] | None) -> None:
        """The server answered, with ``(remaining, reset)`` from its ``Ratelimit`` header or None."""
        if budget is not None:
            self._pacer.observe_server_budget(*budget)
        else:
            self._pacer.observe_answer_without_budget()
