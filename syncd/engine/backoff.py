"""Per-script backoff: a Worker script whose writes keep failing is left alone for a while.

A script (``Target``) whose call fails with a timeout, a connection error or a 5xx (after the
client's own retries) is *backed off*: for the next ``backoff_seconds`` (plus a jitter of up to a
fifth of ``initial_seconds``, never past ``max_seconds``: ``syncd.retrying``'s rule) no cycle writes
to it; its mappings report ``ScriptBackedOff`` naming the retry time. Each further failure doubles
the backoff up to ``max_seconds``. Any answer that is not such a failure (success,
or a 4xx, which is the mapping's problem, not the script's reachability) makes it healthy again.
A 429 is pacing, not failure, and a call that was never started (cycle deadline, state store
error, a bug) says nothing about the script: neither changes its state.

The first cycle after the retry time writes to it again; the level-based reconcile re-reads its
failed mappings on its own, so no extra trigger is needed.

One log line per state change (``script.backoff``: ``entered``, ``extended``, ``recovered``), never
one per cycle. The state lives in memory only (a restart retries every script at once, which costs
one call per failing script): persisting it would buy little.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from syncd.errors import CloudflareServerError, CloudflareTransportError, ScriptBackedOff, SyncdError
from syncd.model import Target
from syncd.retrying import Backoff

log = structlog.get_logger("syncd.engine")

JITTER = 0.2  # of initial_seconds, added to the nominal backoff, so failing scripts spread out


def counts_as_script_failure(error: SyncdError) -> bool:
    """Timeouts, connection errors and 5xx: the script (or Cloudflare's side of it) is unwell."""
    return isinstance(error, CloudflareTransportError | CloudflareServerError)


@dataclass(frozen=True)
class ScriptHealth:
    """One backed-off script, as ``/status`` and the metrics show it."""

    target: Target
    consecutive_failures: int
    backoff_seconds: float  # the nominal (un-jittered) current backoff
    next_retry_at: float  # epoch seconds (the reconciler's clock)
    last_error_code: str

    @property
    def state(self) -> str:
        return "backed_off"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


class ScriptBackoff:
    """Thread-safe: the applier's writers report to it concurrently."""

    def __init__(
        self,
        initial_seconds: float = 30.0,
        max_seconds: float = 600.0,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._rng = rng
        self._scripts: dict[Target, ScriptHealth] = {}
        self.configure(initial_seconds, max_seconds)

    def configure(self, initial_seconds: float, max_seconds: float) -> None:
        if not 0 < initial_seconds <= max_seconds:
            raise ValueError("backoff needs 0 < initial_seconds <= max_seconds")
        with self._lock:
            self._rule = Backoff(initial=initial_seconds, maximum=max_seconds, jitter=JITTER * initial_seconds)

    def blocked(self, target: Target) -> ScriptBackedOff | None:
        """The error to report instead of writing to ``target`` now, or None when it may be written."""
        with self._lock:
            health = self._scripts.get(target)
        if health is None or self._clock() >= health.next_retry_at:
            return None
        where = f"{target.dispatch_namespace}/{target.script}" if target.dispatch_namespace else target.script
        return ScriptBackedOff(
            f"script {where} backed off after {health.consecutive_failures} failed call(s)"
            f" ({health.last_error_code}); next retry at {_iso(health.next_retry_at)}",
            retry_at=health.next_retry_at,
        )

    def record(self, target: Target, error: SyncdError | None) -> None:
        """The outcome of a call to ``target``: None for success; an error is judged here."""
        if error is None or not counts_as_script_failure(error):
            if error is None or _answered(error):
                self._recovered(target)
            return
        now = self._clock()
        with self._lock:
            previous = self._scripts.get(target)
            failures = 1 if previous is None else previous.consecutive_failures + 1
            nominal = self._rule.nominal(failures)
            wait = self._rule.delay(failures, self._rng)
            health = ScriptHealth(target, failures, nominal, now + wait, error.reason)
            self._scripts[target] = health
        log.warning(
            "script.backoff",
            change="entered" if previous is None else "extended",
            account=target.account_id,
            namespace=target.dispatch_namespace,
            script=target.script,
            consecutive_failures=failures,
            backoff_seconds=round(nominal, 3),
            next_retry_at=_iso(health.next_retry_at),
            error_code=error.reason,
        )

    def _recovered(self, target: Target) -> None:
        with self._lock:
            previous = self._scripts.pop(target, None)
        if previous is not None:
            log.info(
                "script.backoff",
                change="recovered",
                account=target.account_id,
                namespace=target.dispatch_namespace,
                script=target.script,
                consecutive_failures=previous.consecutive_failures,
            )

    def retain(self, targets: Iterable[Target]) -> None:
        """Forget scripts no mapping targets any more (silently: nothing recovered)."""
        keep = set(targets)
        with self._lock:
            for target in [t for t in self._scripts if t not in keep]:
                del self._scripts[target]

    def snapshot(self) -> list[ScriptHealth]:
        """Every backed-off script (a healthy one is simply absent), sorted by target."""
        with self._lock:
            entries = list(self._scripts.values())
        return sorted(entries, key=lambda h: (h.target.account_id, h.target.dispatch_namespace or "", h.target.script))


def _answered(error: SyncdError) -> bool:
    """Cloudflare answered the call with a verdict on it (a 4xx other than 429)."""
    status = getattr(error, "status", None)
    return isinstance(status, int) and 400 <= status < 500 and status != 429


__all__ = ["ScriptBackoff", "ScriptHealth", "counts_as_script_failure"]
