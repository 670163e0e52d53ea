"""What the rest of the service needs from leader election: a write gate and who leads.

``write_gate(elector)`` is handed to the Cloudflare client, which calls it before every write
attempt with the monotonic instant the attempt's timeout ends at: the write starts only while this
replica is the leader and its Lease (renewed within the renew deadline) provably outlasts that
instant. Otherwise nothing is sent and ``LeadershipLost`` fails that write's mappings; the elector
reports the loss and the service exits so Kubernetes restarts it as a follower.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from syncd.errors import LeadershipLost


class Elector(Protocol):
    @property
    def identity(self) -> str: ...

    @property
    def is_leader(self) -> bool: ...

    @property
    def leader_identity(self) -> str | None: ...

    @property
    def finished(self) -> bool: ...

    def can_write(self, deadline: float) -> bool: ...

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...


def write_gate(elector: Elector) -> Callable[[float], None]:
    def gate(ends_at: float) -> None:
        if not elector.can_write(ends_at):
            raise LeadershipLost(
                f"{elector.identity} cannot prove its Lease outlasts this write; not started "
                f"(leader as last seen: {elector.leader_identity or 'none'})"
            )

    return gate
