"""``build_elector``: a ``LeaderElector`` from ``[leader_election]`` and the pod's environment."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import httpx
from prometheus_client import CollectorRegistry

from syncd.app.leadership.elector import Callback, ElectionClock, ElectionTimings, LeaderElector
from syncd.app.leadership.kube_api import LeaseApi
from syncd.app.leadership.metrics import LeaderMetrics
from syncd.app.leadership.sole import Leadership, SoleWriter
from syncd.clients.kubernetes import KubernetesApi, KubernetesEndpoint
from syncd.config.leader import LeaderElectionSettings


def default_identity(env: Mapping[str, str] | None = None) -> str:
    """The pod's name from the downward API (``$POD_NAME``), else the host name (a pod's is its name)."""
    env = os.environ if env is None else env
    return env.get("POD_NAME") or socket.gethostname()


def kubernetes_endpoint(settings: LeaderElectionSettings, env: Mapping[str, str] | None = None) -> KubernetesEndpoint:
    """The API ``[leader_election]`` connects to (the Lease, and the state Secrets too): in-cluster
    unless ``api_url``, ``namespace``, ``token_file``, ``ca_file`` say otherwise. Raises
    ``KubernetesNotInCluster`` (exit code 2) naming what to set when outside a pod."""
    return KubernetesEndpoint.in_cluster(
        token_file=settings.token_file,
        ca_file=settings.ca_file,
        api_url=settings.api_url,
        namespace=settings.namespace,
        timeout_seconds=settings.request_timeout_seconds,
        environ=env,
    )


def build_elector(
    settings: LeaderElectionSettings,
    *,
    registry: CollectorRegistry | None = None,
    on_started_leading: Callback | None = None,
    on_stopped_leading: Callback | None = None,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: ElectionClock | None = None,
) -> LeaderElector:
    """Raises ``KubernetesNotInCluster`` (no in-cluster address, no namespace file) when the pod's
    environment cannot provide what the settings leave out."""
    api = LeaseApi(KubernetesApi(kubernetes_endpoint(settings, env), transport=transport))
    timings = ElectionTimings(
        settings.lease_duration_seconds, settings.renew_deadline_seconds, settings.retry_period_seconds
    )
    return LeaderElector(
        api,
        settings.lease_name,
        settings.identity or default_identity(env),
        timings,
        clock=clock,
        on_started_leading=on_started_leading,
        on_stopped_leading=on_stopped_leading,
        metrics=LeaderMetrics(registry) if registry is not None else None,
    )


def build_leadership(
    settings: LeaderElectionSettings,
    *,
    registry: CollectorRegistry | None = None,
    on_started_leading: Callback | None = None,
    on_stopped_leading: Callback | None = None,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: ElectionClock | None = None,
) -> Leadership:
    """A ``LeaderElector`` when ``settings.enabled``, else a ``SoleWriter`` (no metrics, no API)."""
    if not settings.enabled:
        return SoleWriter(settings.identity or default_identity(env))
    return build_elector(
        settings,
        registry=registry,
        on_started_leading=on_started_leading,
        on_stopped_leading=on_stopped_leading,
        env=env,
        transport=transport,
        clock=clock,
    )
