"""What the service's parts share: the settings in force, and where the process is in its life.

Both are read from many threads. ``SettingsInForce`` is one reference that a reload replaces (a
reader takes the object once and uses it; it never changes under it). ``Lifetime`` is set by the
lifecycle only: started, stopping (triggering ends, nothing new starts), stopped.
"""

from __future__ import annotations

import threading

from syncd.config import Settings


class SettingsInForce:
    """The settings the service runs with now: call it to read them; a reload calls ``replace``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def __call__(self) -> Settings:
        return self._settings

    def replace(self, settings: Settings) -> None:
        self._settings = settings


class Lifetime:
    """When the service started, and whether it is stopping or stopped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started_at: float | None = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()

    @property
    def started_at(self) -> float | None:
        return self._started_at

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def begin(self, now: float) -> None:
        self._started_at = now

    def begin_stopping(self) -> bool:
        """Mark the service stopping; True for the one caller that did it first."""
        with self._lock:
            if self._stopping.is_set():
                return False
            self._stopping.set()
            return True

    def end(self) -> None:
        self._stopped.set()


__all__ = ["Lifetime", "SettingsInForce"]
