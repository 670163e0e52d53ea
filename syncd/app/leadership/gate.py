"""What the rest of the service needs from leader election: a write gate and who leads.

``write_gate(elector)`` is handed to the Cloudflare client, which calls it before every write
attempt with the monotonic instant the attempt's timeout ends at: the write starts only while this
replica is the leader and its Lease (renewed within the renew deadline) provably outlasts that
instant. Otherwise nothing is sent and ``LeadershipLost`` fails that write's mappings; the elector
reports the loss and the service exits so Kubernetes restarts it as a follower.
"""

from __future__ import annotations

from collections.abc import Callable

from syncd.app.leadership.sole import Leadership
from syncd.errors import LeadershipLost


def write_gate(elector: Leadership) -> Callable[[float], None]:
    def gate(ends_at: float) -> None:
        if not elector.can_write(ends_at):
            raise LeadershipLost(
                f"{elector.identity} cannot prove its Lease outlasts this write; not started "
                f"(leader as last seen: {elector.leader_identity or 'none'})"
            )

    return gate
