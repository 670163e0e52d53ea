"""The Lease as leader election sees it: ``LeaseRecord`` values over ``syncd.clients.kubernetes``.

The HTTP, the in-cluster configuration, the token re-reading and the errors are the one
Kubernetes client's (``syncd.clients.kubernetes``, errors ``KubernetesApiError`` and, for 409,
``KubernetesConflict`` in ``syncd.errors``); this module only turns Lease objects into records.
"""

from __future__ import annotations

from syncd.app.leadership.record import LeaseRecord
from syncd.clients.kubernetes import KubernetesApi, KubernetesEndpoint, LeasesClient


class LeaseApi:
    """Get, create and replace one namespace's Leases; ``None`` from ``get`` when absent."""

    def __init__(self, api: KubernetesApi) -> None:
        self._leases = LeasesClient(api)

    @classmethod
    def at(cls, endpoint: KubernetesEndpoint) -> LeaseApi:
        return cls(KubernetesApi(endpoint))

    def get(self, name: str) -> LeaseRecord | None:
        lease = self._leases.get(name)
        return None if lease is None else LeaseRecord.from_lease(lease)

    def create(self, name: str, record: LeaseRecord) -> LeaseRecord:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}}
        body["spec"] = record.spec()
        return LeaseRecord.from_lease(self._leases.create(body))

    def replace(self, name: str, record: LeaseRecord) -> LeaseRecord:
        """PUT with ``record.resource_version`` as the precondition: 409 when someone wrote first."""
        metadata = {"name": name, "resourceVersion": record.resource_version}
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": record.spec()}
        return LeaseRecord.from_lease(self._leases.replace(name, body))

    def close(self) -> None:
        self._leases.close()
