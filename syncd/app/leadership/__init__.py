"""Leader election on a ``coordination.k8s.io/v1`` Lease: only the leader writes to Cloudflare.

```python
from syncd.app.leadership import build_elector

elector = build_elector(settings.leader_election, registry=metrics.registry,
                        on_stopped_leading=request_exit)
elector.start()
...
if elector.can_write(time.monotonic() + write_timeout):  # before every Cloudflare write
    ...
elector.leader_identity  # for /status
elector.stop()  # on shutdown: releases the Lease, a follower takes over at its next retry
```

Modules: ``elector`` (the algorithm, client-go's semantics), ``kube_api`` (Lease records over the
one Kubernetes client, ``syncd.clients.kubernetes``: in-cluster configuration, token re-reading,
errors), ``record`` (the Lease spec and ``MicroTime``), ``metrics`` (``syncd_leader``,
``syncd_leader_transitions_total``), ``factory`` (from settings), ``sole`` (the ``Leadership``
protocol both implement, and ``SoleWriter`` for a single process: ``build_leadership`` returns one
or the other from ``[leader_election] enabled``).
"""

from syncd.app.leadership.elector import ElectionClock, ElectionTimings, LeaderElector
from syncd.app.leadership.factory import build_elector, build_leadership, default_identity
from syncd.app.leadership.kube_api import LeaseApi
from syncd.app.leadership.metrics import LeaderMetrics
from syncd.app.leadership.record import LeaseRecord
from syncd.app.leadership.sole import Leadership, SoleWriter

__all__ = [
    "ElectionClock",
    "ElectionTimings",
    "LeaderElector",
    "LeaderMetrics",
    "Leadership",
    "LeaseApi",
    "LeaseRecord",
    "SoleWriter",
    "build_elector",
    "build_leadership",
    "default_identity",
]
