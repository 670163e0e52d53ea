"""At most one write in flight per Worker script, across cycles.

Cloudflare answers concurrent edits of one script with a 429 ("too many requests modifying the
script"), and two versions racing would make the outcome depend on their order. Within a cycle the
applier gives each script one writer; across cycles the gate matters: a cycle that ended at its
deadline may leave a write running in an abandoned worker, and the next cycle (say, one triggered
by a Vault notification a moment later) must wait for it instead of sending a second one. The gate
is owned by the reconciler, so it outlives any single cycle.
"""

from __future__ import annotations

import threading
import time

from syncd.model import Target


class ScriptGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy: set[Target] = set()

    def acquire(self, target: Target, timeout: float | None) -> bool:
        """Claim ``target``, waiting at most ``timeout`` seconds (None: as long as it takes) for a
        write in flight to end."""
        give_up = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._cond:
            while target in self._busy:
                left = None if give_up is None else give_up - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            self._busy.add(target)
            return True

    def release(self, target: Target) -> None:
        with self._cond:
            self._busy.discard(target)
            self._cond.notify_all()

    def in_flight(self) -> set[Target]:
        with self._cond:
            return set(self._busy)


__all__ = ["ScriptGate"]
