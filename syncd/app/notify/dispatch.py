"""Debounced delivery of noticed Vault writes, shared by both notification sources.

``AuditListener`` (``syncd.app.notify.audit``) and ``VaultEventsSubscriber`` (``syncd.app.notify.vault_events``)
notice written paths on their reader threads; a ``WriteDispatcher`` coalesces repeats of a path
(``Debouncer``) and calls ``on_write(path)`` on one thread of its own, so a slow handler never
stalls a reader and a failing one is logged and does not stop later deliveries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

MAX_DELAY_FACTOR = 5.0  # a path written non-stop is still delivered every few debounce periods


class Debouncer:
    """Coalesces repeated keys: a key is due ``delay`` seconds after its last arrival (a burst
    becomes one delivery), and at the latest ``max_delay`` after its first (so a key written
    non-stop is not starved). Pure: the caller passes the time."""

    def __init__(self, delay: float, max_delay: float | None = None) -> None:
        self.delay = max(0.0, delay)
        self.max_delay = max(self.delay, max_delay if max_delay is not None else self.delay * MAX_DELAY_FACTOR)
        self._first: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def add(self, key: str, now: float) -> None:
        self._first.setdefault(key, now)
        self._last[key] = now

    def _due(self, key: str) -> float:
        return min(self._last[key] + self.delay, self._first[key] + self.max_delay)

    def due_at(self) -> float | None:
        """When the next key is due, or None when nothing waits."""
        return min((self._due(key) for key in self._first), default=None)

    def take_due(self, now: float) -> list[str]:
        """The keys due at ``now``, in arrival order; they are forgotten."""
        due = [key for key in self._first if self._due(key) <= now]
        for key in due:
            del self._first[key], self._last[key]
        return due

    def __len__(self) -> int:
        return len(self._first)


class WriteDispatcher:
    """Calls ``on_write(path)`` on a background thread once a path's writes have gone quiet.

    ``stop`` only signals (what still waits is dropped) so an owner can stop it together with its
    own threads before waiting for them all; ``join`` waits for the thread.
    """

    def __init__(
        self,
        on_write: Callable[[str], None],
        *,
        debounce_seconds: float,
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
        """A write of ``path`` now: delivered once the path has been quiet for the debounce period."""
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
