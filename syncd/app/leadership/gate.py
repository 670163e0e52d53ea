"""What the rest of the service needs from leader election: a write gate and who leads.

``write_gate(leadership)`` is handed to the Cloudflare client, which calls it before every write
attempt: the write starts only while this replica is the leader, with its timeout clipped so that
it ends before the leader's right to write does (see ``write_gate``). Otherwise nothing is sent and
``LeadershipLost`` fails that write's mappings; the elector reports the loss and the service exits
so Kubernetes restarts it as a follower.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from syncd.app.leadership.sole import Leadership
from syncd.deadlines import MIN_ATTEMPT_SECONDS
from syncd.errors import LeadershipLost


def write_gate(leadership: Leadership) -> Callable[[float], float]:
    """The gate for the Cloudflare client: given an attempt's timeout, the timeout it may have.

    A write starts only while this replica leads with at least ``MIN_ATTEMPT_SECONDS`` of its
    renew deadline left, and its timeout is clipped to what is left: the request cannot outlive
    the leader's right to write, and the margin between the renew deadline and the lease duration
    (client-go's 10 s and 15 s) is what a request already at Cloudflare has to land before any
    follower may take over. Times are ``time.monotonic()``, the elector's clock.
    """

    def gate(timeout: float) -> float:
        left = leadership.valid_until() - time.monotonic()
        if not leadership.is_leader or left < min(MIN_ATTEMPT_SECONDS, timeout):
            raise LeadershipLost(
                f"{leadership.identity} cannot prove its Lease outlasts this write; not started "
                f"(leader as last seen: {leadership.leader_identity or 'none'})"
            )
        return min(timeout, left)

    return gate
