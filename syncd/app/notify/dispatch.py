"""Leading-edge delivery of noticed Vault writes, shared by both notification sources.

``AuditListener`` (``syncd.app.notify.audit``) and ``VaultEventsSubscriber``
(``syncd.app.notify.vault_events``) notice written paths on their reader threads; a
``WriteDispatcher`` hands them to ``on_write(path)`` on one thread of its own, so a slow handler
never stalls a reader and a failing one is logged and does not stop later deliveries.

Leading edge (``Debouncer``): the first write of a burst is delivered at once; writes that arrive
while a delivery runs (or within ``spacing`` seconds of the last one) coalesce, each path once, into
the next delivery. ``spacing`` is ``[notifications] debounce_seconds``: 0 (the default) delivers
every write at once, a larger value bounds how often one source can start a reconcile (at most one
delivery per ``spacing`` seconds) at the price of up to ``spacing`` seconds of latency within a
burst. Nothing is dropped, only merged; the service coalesces what arrives while a cycle runs into
one follow-up cycle (``syncd.app.service.daemon``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog


class Debouncer:
    """Leading-edge coalescing of keys with a minimum ``spacing`` between deliveries.

    A key added when the last delivery is at least ``spacing`` ago is due at once; otherwise every
    waiting key is due together ``spacing`` after the last delivery. Repeats of a waiting key merge.
    Pure: the caller passes the time.
    """

    def __init__(self, spacing: float) -> None:
        self.spacing = max(0.0, spacing)
        self._waiting: dict[str, float] = {}  # key -> first arrival (insertion order = arrival order)
        self._last_delivery: float | None = None

    def add(self, key: str, now: float) -> None:
        self._waiting.setdefault(key, now)

    def due_at(self) -> float | None:
        """When the waiting keys are due, or None when nothing waits."""
        if not self._waiting:
            return None
        first = min(self._waiting.values())
        if self._last_delivery is None:
            return first
        return max(first, self._last_delivery + self.spacing)

    def take_due(self, now: float) -> list[str]:
        """Every waiting key, in arrival order, when they are due at ``now`` (else none); forgotten."""
        at = self.due_at()
        if at is None or at > now:
            return []
        due = list(self._waiting)
        self._waiting.clear()
        self._last_delivery = now
        return due

    def __len__(self) -> int:
        return len(self._waiting)


class WriteDispatcher:
    """Calls ``on_write(path)`` on a background thread for every written path, leading edge.

    ``stop`` only signals (what still waits is dropped) so an owner can stop it together with its
    own threads before waiting for them all; ``join`` waits for the thread.
    """

    def __init__(
        self,
        on_write: Callable[[str], None],
        *,
        debounce_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        thread_name: str,
        logger_name: str = "syncd.write_dispatch",
    ) -> None:
        self._on_write = on_write
        self._clock = clock
        self._thread_name = thread_name
        self._log = structlog.get_logger(logger_name)
        self._debouncer = Debouncer(debounce_seconds)
        self._wakeup = threading.Condition()  # guards the debouncer and _stopping
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> WriteDispatcher:
        self._thread = threading.Thread(target=self._dispatch, name=self._thread_name, daemon=True)
        self._thread.start()
        return self

    def add(self, path: str) -> None:
        """A write of ``path`` now: delivered at once, or with the next batch (see ``Debouncer``)."""
        with self._wakeup:
            self._debouncer.add(path, self._clock())
            self._wakeup.notify_all()

    def stop(self) -> None:
        """Deliver nothing more; paths waiting for delivery are dropped. Returns at once."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the thread to end (not when called from ``on_write``)."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _dispatch(self) -> None:
        with self._wakeup:
            while not self._stopping:
                now = self._clock()
                due = self._debouncer.take_due(now)
                if not due:
                    at = self._debouncer.due_at()
                    self._wakeup.wait(None if at is None else max(0.001, at - now))
                    continue
                self._wakeup.release()
                try:
                    for path in due:
                        self._deliver(path)
                finally:
                    self._wakeup.acquire()

    def _deliver(self, path: str) -> None:
        try:
            self._on_write(path)
        except Exception as exc:
            self._log.warning("vault write notification handler failed", path=path, error_code=type(exc).__name__)


__all__ = ["Debouncer", "WriteDispatcher"]


def report_connections(observer: Callable[[int], None] | None, count: int, what: str) -> None:
    """Tell a connection-count observer (the metrics gauge); a failing observer must not break a
    connection, so its error is logged at debug and dropped."""
    if observer is None:
        return
    try:
        observer(count)
    except Exception as exc:
        structlog.get_logger("syncd.write_dispatch").debug(
            f"{what} connection observer failed", error_code=type(exc).__name__
        )
