"""The sweep's two modes, and the slices of the backstop sweep. Pure: the service passes the time.

**Interval mode** (no notification source configured, or none connected): every tick of the
interval job (``sync.interval_seconds``) reconciles every mapping, as syncd always did.

**Backstop mode** (a configured notification source is connected): Vault tells syncd about every
write, so the full sweep is only a backstop against a missed notification and spreads over
``sync.backstop_interval_seconds``. The interval job keeps ticking every ``interval_seconds``; each
tick reconciles the next of ``k = floor(backstop / interval)`` slices of the distinct Vault secrets
(sorted by mount and path; every mapping of one secret in the same slice), so ``k`` consecutive
ticks cover every secret exactly once and the Vault load is flat instead of a spike per interval.

``SyncModeTracker`` decides the mode from the sources' open connection counts: the socket audit
device counts as connected with at least one connection from Vault, the event subscriber with one
open WebSocket per event type pattern. Backstop mode holds while any configured source is
connected; the service sweeps everything at once on every change of mode (see
``syncd.app.service.sync_mode``): on the way to interval mode it covers the writes lost with the
connection, on the way to backstop mode the writes made while it was down but after the last sweep.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from syncd.config import Settings
from syncd.model import VaultSecretRef

INTERVAL = "interval"
BACKSTOP = "backstop"
MODES = (INTERVAL, BACKSTOP)

_CONNECTION_NOUN = {"audit": ("connection", "connections"), "events": ("subscription", "subscriptions")}


@runtime_checkable
class SyncModeMetrics(Protocol):
    def set_sync_mode(self, mode: str) -> None: ...


@dataclass(frozen=True)
class ModeChange:
    mode: str
    reason: str
    since: float
    previous: str


class SyncModeTracker:
    """The sweep mode in force and why, from each configured source's open connections."""

    def __init__(self, needed: Mapping[str, int], now: float) -> None:
        """``needed``: the configured sources, each with the open connections that make it connected."""
        self._needed = {source: max(1, count) for source, count in needed.items()}
        self._counts = dict.fromkeys(self._needed, 0)
        self._failed: set[str] = set()
        self.mode, self.reason = self._evaluate()
        self.since = now

    @property
    def configured(self) -> bool:
        return bool(self._needed)

    def connections(self, source: str, count: int, now: float) -> ModeChange | None:
        """``source`` has ``count`` connections open now; the change of mode this makes, if any."""
        if source not in self._counts:
            return None
        self._counts[source] = max(0, count)
        return self._update(now)

    def failed(self, source: str, now: float) -> ModeChange | None:
        """``source`` could not start (and will not connect)."""
        if source not in self._needed:
            return None
        self._failed.add(source)
        self._counts[source] = 0
        return self._update(now)

    def _connected(self, source: str) -> bool:
        return source not in self._failed and self._counts[source] >= self._needed[source]

    def _describe(self, source: str) -> str:
        if source in self._failed:
            return f"{source}: could not start"
        count, needed = self._counts[source], self._needed[source]
        one, many = _CONNECTION_NOUN.get(source, ("connection", "connections"))
        if needed == 1:
            return f"{source}: {count} {one if count == 1 else many}" if count else f"{source}: no {one}"
        return f"{source}: {count} of {needed} {many} open"

    def _evaluate(self) -> tuple[str, str]:
        if not self._needed:
            return INTERVAL, "no notification source configured"
        connected = [s for s in sorted(self._needed) if self._connected(s)]
        if connected:
            return BACKSTOP, "; ".join(self._describe(s) for s in connected)
        return INTERVAL, "; ".join(self._describe(s) for s in sorted(self._needed))

    def _update(self, now: float) -> ModeChange | None:
        mode, reason = self._evaluate()
        previous = self.mode
        self.reason = reason
        if mode == previous:
            return None
        self.mode, self.since = mode, now
        return ModeChange(mode, reason, now, previous)

    def snapshot(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "reason": self.reason,
            "since": self.since,
            "sources": {
                source: {
                    "connections": self._counts[source],
                    "needed": self._needed[source],
                    "connected": self._connected(source),
                }
                for source in sorted(self._needed)
            },
        }


def slice_count(settings: Settings) -> int:
    """How many ticks of the interval job one backstop sweep spreads over (at least 1)."""
    sync = settings.sync
    return max(1, math.floor(sync.backstop_seconds / sync.interval_seconds + 1e-9))


def secrets_in_order(settings: Settings) -> list[tuple[VaultSecretRef, list[str]]]:
    """The distinct Vault secrets in a stable order (mount, path), each with its mappings' names."""
    grouped: dict[VaultSecretRef, list[str]] = {}
    for mapping in settings.mappings:
        grouped.setdefault(mapping.vault.ref, []).append(mapping.name)
    return sorted(grouped.items(), key=lambda item: (item[0].mount, item[0].path))


class SweepSlicer:
    """Hands out the backstop sweep's slices in turn: tick ``j`` (mod ``k``) gets the secrets
    ``[j*n//k, (j+1)*n//k)`` of ``n``, so slice sizes differ by one at most."""

    def __init__(self) -> None:
        self._tick = 0
        self._order: tuple[Settings, list[tuple[VaultSecretRef, list[str]]]] | None = None

    def _secrets(self, settings: Settings) -> list[tuple[VaultSecretRef, list[str]]]:
        if self._order is None or self._order[0] is not settings:  # a reload brings a new object
            self._order = (settings, secrets_in_order(settings))
        return self._order[1]

    def next_slice(self, settings: Settings) -> tuple[list[str], int, int]:
        """The mapping names of the next slice, its index and the number of slices."""
        secrets = self._secrets(settings)
        count = slice_count(settings)
        index = self._tick % count
        self._tick = index + 1
        n = len(secrets)
        chosen = secrets[index * n // count : (index + 1) * n // count]
        return [name for _, names in chosen for name in names], index, count

    def position(self, settings: Settings) -> dict[str, int]:
        count = slice_count(settings)
        return {"slices": count, "next_slice": self._tick % count, "secrets": len(self._secrets(settings))}


__all__ = [
    "BACKSTOP",
    "INTERVAL",
    "MODES",
    "ModeChange",
    "SweepSlicer",
    "SyncModeMetrics",
    "SyncModeTracker",
    "secrets_in_order",
    "slice_count",
]
