"""``build_elector``: a ``LeaderElector`` from ``[leader_election]`` and the pod's environment."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import httpx
from prometheus_client import CollectorRegistry

from syncd.app.leadership.elector import Callback, ElectionClock, ElectionTimings, LeaderElector
from syncd.app.leadership.kube_api import LeaseApi, TokenFile, build_http_client, in_cluster_url
from syncd.app.leadership.metrics import LeaderMetrics
from syncd.app.leadership.sole import Leadership, SoleWriter
from syncd.config.leader import LeaderElectionSettings


def default_identity(env: Mapping[str, str] | None = None) -> str:
    """The pod's name from the downward API (``$POD_NAME``), else the host name (a pod's is its name)."""
    env = os.environ if env is None else env
    return env.get("POD_NAME") or socket.gethostname()


def resolve_namespace(settings: LeaderElectionSettings) -> str:
    if settings.namespace:
        return settings.namespace
    return (settings.token_file.parent / "namespace").read_text().strip()


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
    """Raises ``OSError`` (no namespace file) or ``KubeApiError`` (no in-cluster address) when the
    pod's environment cannot provide what the settings leave out."""
    base_url = settings.api_url or in_cluster_url(env)
    http = build_http_client(base_url, settings.ca_file, settings.request_timeout_seconds, transport)
    api = LeaseApi(
        http, resolve_namespace(settings), TokenFile(settings.token_file), timeout=settings.request_timeout_seconds
    )
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
