"""``Leadership``: what the service needs from an elector, and ``SoleWriter`` for one process.

Without ``[leader_election]`` (the single-replica StatefulSet, a laptop) the process is the only
writer by construction (the state file's lock refuses a second one), so the service can hold a
``SoleWriter`` and ask it the same questions it asks a ``LeaderElector``, with no branch of its own.
"""

from __future__ import annotations

import math
from typing import Protocol


class Leadership(Protocol):
    @property
    def identity(self) -> str: ...

    @property
    def is_leader(self) -> bool: ...

    @property
    def leader_identity(self) -> str | None: ...

    @property
    def finished(self) -> bool: ...

    def valid_until(self) -> float: ...

    def can_write(self, deadline: float) -> bool: ...

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...


class SoleWriter:
    """Always the leader, for as long as it runs; ``stop()`` ends that (no write after shutdown)."""

    def __init__(self, identity: str) -> None:
        self.identity = identity
        self._stopped = False

    @property
    def is_leader(self) -> bool:
        return not self._stopped

    @property
    def leader_identity(self) -> str | None:
        return self.identity

    @property
    def finished(self) -> bool:
        return self._stopped

    def valid_until(self) -> float:
        return -math.inf if self._stopped else math.inf

    def can_write(self, deadline: float) -> bool:
        return not self._stopped

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped = True
