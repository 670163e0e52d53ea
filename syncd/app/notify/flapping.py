"""How often a change of sync mode may sweep everything: at most once per ``spacing`` seconds.

The service sweeps every secret when the sync mode changes (``syncd.app.service.sweep``): into
interval mode for the writes whose notifications a dropped connection lost, into backstop mode for
those made while none was connected. A connection that comes and goes (a flapping network, or
anyone who can reach the audit port) would make each change cost a full sweep (at 10,000 secrets,
20,000 Vault reads per connect/close pair). ``SweepSpacing`` lets one change per ``spacing``
(``sync.interval_seconds``) sweep at once; a change sooner than that asks the next tick of the
interval job to sweep instead, which is at most ``spacing`` away: nothing a change was meant to
cover is skipped, and flapping costs at most one extra full sweep per interval. Pure: the caller
passes the time.
"""

from __future__ import annotations

import threading


class SweepSpacing:
    def __init__(self) -> None:
        self._last: float | None = None
        self._lock = threading.Lock()

    def sweep_now(self, now: float, spacing: float) -> bool:
        """True when a sweep may start now (and it is counted); False: leave it to the next tick."""
        with self._lock:
            if self._last is not None and now - self._last < spacing:
                return False
            self._last = now
            return True


__all__ = ["SweepSpacing"]
