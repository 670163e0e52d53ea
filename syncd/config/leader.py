"""``[leader_election]``: active/standby replicas behind a ``coordination.k8s.io/v1`` Lease.

Off by default (one process, a file lock). When enabled, only the replica holding the Lease writes
to Cloudflare. The timings mean what they mean in client-go's leaderelection, with its defaults:
a Lease not renewed for ``lease_duration_seconds`` (as measured by the observer's own clock) may be
taken over; the leader gives up when it has not renewed for ``renew_deadline_seconds``; every
candidate retries every ``retry_period_seconds``. Hence renew deadline < lease duration (the margin
is what keeps two writers apart despite clock-rate drift and request latency) and retry period <
renew deadline (at least one retry before giving up).

``namespace`` and ``identity`` default to the pod's own (the service-account namespace file;
``$POD_NAME``, else the host name). ``api_url``, ``token_file`` and ``ca_file`` default to the
in-cluster service-account configuration; set them only to point syncd at another API server (tests,
the devstack).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from syncd.config.strict import ConfigPath, RuleProblem, StrictModel, must_not_exceed

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class LeaderElectionSettings(StrictModel):
    enabled: bool = False
    lease_name: str = Field(default="syncd-leader", max_length=253, pattern=_DNS_SUBDOMAIN)
    namespace: str | None = Field(default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    identity: str | None = Field(default=None, min_length=1, max_length=253)
    lease_duration_seconds: float = Field(default=15.0, gt=0, le=3600)
    renew_deadline_seconds: float = Field(default=10.0, gt=0)
    retry_period_seconds: float = Field(default=2.0, gt=0)
    api_url: str | None = Field(default=None, pattern=r"^https?://")
    token_file: ConfigPath = SERVICE_ACCOUNT_DIR / "token"
    ca_file: ConfigPath | None = SERVICE_ACCOUNT_DIR / "ca.crt"
    request_timeout_seconds: float = Field(default=5.0, gt=0)

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        lease, renew = ("lease_duration_seconds", 15.0), ("renew_deadline_seconds", 10.0)
        retry = ("retry_period_seconds", 2.0)
        yield from must_not_exceed(data, renew, lease, strictly=True)
        yield from must_not_exceed(data, retry, renew, strictly=True)
