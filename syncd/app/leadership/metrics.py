"""``syncd_leader`` and ``syncd_leader_transitions_total``, on the registry the service passes in.

Alert when no replica has led for longer than one lease duration (proposed rule, see
``notes/k8s.md``): ``max(syncd_leader{job="syncd"}) < 1`` for 1m (or absent).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class LeaderMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._leader = Gauge(
            "syncd_leader", "1 while this replica holds the leader Lease (and may write), else 0", registry=registry
        )
        self._transitions = Counter(
            "syncd_leader_transitions", "Times this replica became the leader", registry=registry
        )

    def set_leader(self, leading: bool) -> None:
        self._leader.set(1 if leading else 0)

    def became_leader(self) -> None:
        self._transitions.inc()
