"""``LeaderElector``: client-go's leaderelection on a Lease, on a plain thread.

The rules (k8s.io/client-go/tools/leaderelection ``tryAcquireOrRenew``, ``renew``, ``release``):

- A candidate reads the Lease. Absent: it creates it, holding it. Held by another: it may take it
  over only once ``leaseDurationSeconds`` have passed *on its own monotonic clock* since it last saw
  the record change (the holder's timestamps are never compared with local time, so skewed wall
  clocks do not matter). Empty holder (released): it takes it at once.
- Every write is a PUT with the ``resourceVersion`` read just before: of two candidates, one gets
  409 Conflict and stays a follower.
- The leader renews every ``retry_period``; when no renewal has succeeded for ``renew_deadline``
  (measured from the *start* of the last successful attempt) it is no longer the leader, even if its
  thread is stuck in a call: ``is_leader`` and ``can_write`` read the clock, not a flag. A follower
  needs ``lease_duration`` > ``renew_deadline`` from a moment at or after that start, so the old
  leader has stopped writing before a new one can exist.
- ``stop()`` releases the Lease when leading (holder emptied, ``leaseDurationSeconds: 1``), so a
  follower takes over at its next retry instead of after a lease duration (``ReleaseOnCancel``).

After losing leadership the elector ends, as client-go's ``Run`` returns; the service exits and
Kubernetes restarts it as a follower. ``step()`` is one round (what the thread runs in a loop); tests
drive it directly under a fake clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import structlog

from syncd.app.leadership.kube_api import LeaseApi
from syncd.app.leadership.metrics import LeaderMetrics
from syncd.app.leadership.record import LeaseRecord
from syncd.errors import KubernetesApiError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ElectionTimings:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("leader election needs 0 < retry_period < renew_deadline < lease_duration")


class ElectionClock:
    """Time as the elector sees it; tests substitute one that they advance by hand."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait until ``event`` is set or ``seconds`` pass; whether it was set."""
        return event.wait(seconds)


Callback = Callable[[], None]


class LeaderElector:
    def __init__(
        self,
        api: LeaseApi,
        lease_name: str,
        identity: str,
        timings: ElectionTimings | None = None,
        *,
        clock: ElectionClock | None = None,
        on_started_leading: Callback | None = None,
        on_stopped_leading: Callback | None = None,
        metrics: LeaderMetrics | None = None,
    ) -> None:
        self._api = api
        self._lease_name = lease_name
        self.identity = identity
        self.timings = timings or ElectionTimings()
        self._clock = clock or ElectionClock()
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._metrics = metrics
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0  # monotonic time the observed record was first seen
        self._leading = False
        self._renewed_at = -math.inf  # monotonic start of the last successful acquire/renew
        self._finished = False
        if metrics is not None:
            metrics.set_leader(False)

    # -- what the service reads -----------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        with self._lock:
            return self._leading and self._clock.monotonic() < self._renewed_at + self.timings.renew_deadline

    @property
    def leader_identity(self) -> str | None:
        """The holder as last observed (``None``: nobody, or not read yet)."""
        with self._lock:
            return self._observed.holder if self._observed is not None else None

    def valid_until(self) -> float:
        """Monotonic time until which this replica may write (``-inf`` when it is not the leader)."""
        with self._lock:
            return self._renewed_at + self.timings.renew_deadline if self._leading else -math.inf

    def can_write(self, deadline: float) -> bool:
        """Leader now, and still leader at the monotonic ``deadline`` of the write about to start."""
        until = self.valid_until()
        return self._clock.monotonic() < until and deadline <= until

    @property
    def finished(self) -> bool:
        """True once leadership was lost: the elector does nothing more."""
        return self._finished

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the elector is already started")
        self._thread = threading.Thread(target=self._run, name="leader-elector", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the loop and release the Lease if leading (bounded by ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.release()
        self._api.close()

    def _run(self) -> None:
        log.info("leader election started", identity=self.identity, lease=self._lease_name)
        while not self._stop.is_set() and not self._finished:
            delay = self.step()
            if self._clock.wait(self._stop, delay):
                break

    # -- one round ------------------------------------------------------------------------------

    def step(self) -> float:
        """One attempt to acquire or renew; the seconds to wait before the next."""
        if self._finished:
            return self.timings.retry_period
        if self._leading and self._clock.monotonic() >= self.valid_until():
            self._lose("renew deadline passed without a successful renewal")
            return self.timings.retry_period
        started = self._clock.monotonic()
        deadline = self.valid_until()
        if self._try_acquire_or_renew(started):
            if self._finished:  # stop() released while this attempt was in flight: stay stopped
                return self.timings.retry_period
            if not self._leading:
                self._become_leader()
            elif self._clock.monotonic() >= deadline:
                # The renewal landed, but only after the deadline (a slow call): client-go's
                # timeout would have cancelled it, and writes already stopped; stay stopped.
                self._lose("renewed only after the renew deadline")
            return self.timings.retry_period
        now = self._clock.monotonic()
        if self._leading:
            holder = self.leader_identity
            if holder is not None and holder != self.identity:
                # Someone holds it (edited by hand, or an expiry we could not see): stop at once
                # rather than at the deadline.
                self._lose(f"the lease is held by {holder}")
            elif now >= self.valid_until():
                self._lose("renew deadline passed without a successful renewal")
            return max(0.0, min(self.timings.retry_period, self.valid_until() - now))
        # A follower tries again at the next retry, or right when the observed lease expires if
        # that comes first; once expired (and still not acquired: a race lost, an API error) it
        # waits a whole retry period, never spins.
        until_expiry = self._expires_at() - now
        return until_expiry if 0 < until_expiry < self.timings.retry_period else self.timings.retry_period

    def _expires_at(self) -> float:
        with self._lock:
            observed, at = self._observed, self._observed_at
        if observed is None or not observed.holder:
            return -math.inf
        return at + (observed.lease_duration_seconds or self.timings.lease_duration)

    def _observe(self, record: LeaseRecord | None, now: float) -> None:
        with self._lock:
            if record is None or not record.same_spec(self._observed):
                self._observed_at = now
            self._observed = record

    def _try_acquire_or_renew(self, started: float) -> bool:
        wall = self._clock.now()
        duration = math.ceil(self.timings.lease_duration)
        try:
            current = self._api.get(self._lease_name)
            if current is None:
                mine = LeaseRecord(self.identity, duration, wall, wall, 0)
                self._succeeded(self._api.create(self._lease_name, mine), started)
                return True
            self._observe(current, self._clock.monotonic())
            if current.holder and current.holder != self.identity and self._clock.monotonic() < self._expires_at():
                return False
            if current.holder == self.identity:
                mine = LeaseRecord(
                    self.identity,
                    duration,
                    current.acquire_time or wall,
                    wall,
                    current.transitions,
                    current.resource_version,
                )
            else:
                mine = LeaseRecord(
                    self.identity, duration, wall, wall, current.transitions + 1, current.resource_version
                )
            self._succeeded(self._api.replace(self._lease_name, mine), started)
            return True
        except KubernetesApiError as error:
            log.info(
                "lease not acquired or renewed", lease=self._lease_name, status=error.status, reason=error.api_reason
            )
            return False
        except (httpx.HTTPError, OSError, ValueError) as error:  # unreachable, timed out, token file gone
            log.info("lease not acquired or renewed", lease=self._lease_name, error=type(error).__name__)
            return False

    def _succeeded(self, record: LeaseRecord, started: float) -> None:
        with self._lock:
            self._observed = record
            self._observed_at = self._clock.monotonic()
            self._renewed_at = started

    def _become_leader(self) -> None:
        with self._lock:
            self._leading = True
        log.info("became the leader", identity=self.identity, lease=self._lease_name)
        if self._metrics is not None:
            self._metrics.set_leader(True)
            self._metrics.became_leader()
        self._call(self._on_started)

    def _lose(self, why: str) -> None:
        with self._lock:
            was_leading = self._leading
            self._leading = False
            self._finished = True
        if not was_leading:
            return
        log.warning("lost leadership", identity=self.identity, lease=self._lease_name, why=why)
        if self._metrics is not None:
            self._metrics.set_leader(False)
        self._call(self._on_stopped)

    def release(self) -> None:
        """Give the Lease up if this replica holds it (an empty holder, 1 s duration)."""
        with self._lock:
            leading = self._leading and self._clock.monotonic() < self._renewed_at + self.timings.renew_deadline
            self._leading = False
            self._finished = True
        if self._metrics is not None:
            self._metrics.set_leader(False)
        if not leading:
            return
        wall = self._clock.now()
        try:
            current = self._api.get(self._lease_name)
            if current is None or current.holder != self.identity:
                return
            released = LeaseRecord(None, 1, wall, wall, current.transitions, current.resource_version)
            self._observe(self._api.replace(self._lease_name, released), self._clock.monotonic())
            log.info("released the lease", identity=self.identity, lease=self._lease_name)
        except (KubernetesApiError, httpx.HTTPError, OSError, ValueError) as error:
            log.warning("could not release the lease", lease=self._lease_name, error=type(error).__name__)

    @staticmethod
    def _call(callback: Callback | None) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("leader election callback failed")
