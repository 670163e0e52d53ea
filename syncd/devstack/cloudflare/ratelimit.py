"""The account rate limit: ``limit`` requests per ``window`` seconds per credential.

Counted with the emulator clock in fixed windows that start at a bucket's first request. The
request that goes over the limit is answered 429 (code 971 "Please wait and consider throttling
your request speed", ``Retry-After``) and blocks the credential for ``block`` seconds from that
moment (5 minutes by default, as documented); blocked requests are not counted. Every answer on
the real paths carries ``Ratelimit: "default";r=<remaining>;t=<seconds to reset>`` and
``Ratelimit-Policy: "burst";q=<limit>;w=<window>``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from syncd.devstack.cloudflare.envelope import RATE_LIMITED, ApiError
from syncd.devstack.httpkit import Clock

RATE_LIMIT_MESSAGE = "Please wait and consider throttling your request speed"


@dataclass
class _Bucket:
    window_start: float
    count: int = 0
    blocked_until: float = 0.0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    remaining: int
    reset_seconds: int
    retry_after: int
    limit: int
    window: int

    def headers(self) -> dict[str, str]:
        headers = {
            "Ratelimit": f'"default";r={self.remaining};t={self.reset_seconds}',
            "Ratelimit-Policy": f'"burst";q={self.limit};w={self.window}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers

    def error(self) -> ApiError:
        return ApiError(429, RATE_LIMITED, RATE_LIMIT_MESSAGE, headers=self.headers())


class RateLimiter:
    def __init__(
        self, clock: Clock, lock: threading.RLock, limit: int = 1200, window: float = 300.0, block: float = 300.0
    ) -> None:
        self.clock = clock
        self.lock = lock
        self._buckets: dict[str, _Bucket] = {}
        self.configure(limit, window, block)

    def configure(self, limit: int, window: float, block: float) -> None:
        if limit <= 0 or window <= 0 or block < 0:
            raise ValueError("limit and window must be positive, block not negative")
        with self.lock:
            self.limit = int(limit)
            self.window = float(window)
            self.block = float(block)
            self._buckets.clear()

    def hit(self, bucket_name: str) -> RateDecision:
        """Count one request for ``bucket_name`` and say whether it may be served."""
        now = self.clock.now()
        with self.lock:
            bucket = self._buckets.get(bucket_name)
            if bucket is None or (now >= bucket.window_start + self.window and now >= bucket.blocked_until):
                bucket = _Bucket(window_start=now)
                self._buckets[bucket_name] = bucket
            if now < bucket.blocked_until:
                return self._decision(bucket, now, allowed=False)
            if bucket.count >= self.limit:
                bucket.blocked_until = now + self.block
                return self._decision(bucket, now, allowed=False)
            bucket.count += 1
            return self._decision(bucket, now, allowed=True)

    def _decision(self, bucket: _Bucket, now: float, *, allowed: bool) -> RateDecision:
        reset_at = max(bucket.window_start + self.window, bucket.blocked_until)
        return RateDecision(
            allowed=allowed,
            remaining=max(self.limit - bucket.count, 0),
            reset_seconds=max(math.ceil(reset_at - now), 0),
            retry_after=max(math.ceil(bucket.blocked_until - now), 1),
            limit=self.limit,
            window=math.ceil(self.window),
        )
