"""Building the object graph from ``Settings``: clients, token manager, pacer, reconciler, service.

Everything that talks to the network takes its transport or session from outside (``vault_session``,
``cloudflare_transport``), so tests can point the real clients anywhere. Credentials become
callables (``syncd.app.credentials``) read when needed, so rotated files take effect without a
restart. One ``Pacer`` per Cloudflare credential (``PacerRegistry``): every client using the same
credential shares the account's rate budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import requests
import structlog

import syncd
from syncd.app.credentials import CredentialError, credential_from, read_token_file, trigger_token_from
from syncd.app.leadership import LeaderMetrics, build_leadership
from syncd.app.leadership.gate import write_gate
from syncd.app.service.daemon import SchedulerLike, Service, ServiceParts
from syncd.app.service.drift_checks import DriftChecker
from syncd.app.service.http_server import OpsServer
from syncd.app.service.metrics import Metrics
from syncd.app.service.store_drift import StoreDriftCheck
from syncd.app.state_backend import open_configured_state
from syncd.app.vault_tls import vault_connection
from syncd.clients.cloudflare import ApiTokenAuth, CloudflareAuth, CloudflareClient, GlobalKeyAuth
from syncd.clients.observe import NULL_OBSERVER, RequestObserver
from syncd.clients.pacer import Pacer
from syncd.clients.secrets_store import SecretsStoreClient
from syncd.clients.vault import VaultReader
from syncd.clients.vault_auth import (
    AppRoleLogin,
    JwtLogin,
    KubernetesLogin,
    LoginStrategy,
    TokenLogin,
    VaultTokenManager,
)
from syncd.clients.worker_versions import WorkerVersionsClient
from syncd.config import (
    MIN_FINGERPRINT_KEY_BYTES,
    AppRoleAuth,
    CloudflareApiToken,
    CloudflareSettings,
    JwtAuth,
    KubernetesAuth,
    LoggingSettings,
    Settings,
    TokenAuth,
)
from syncd.config.insecure import insecure_settings
from syncd.engine.destinations_store import SecretsStoreAdapter
from syncd.engine.reconciler import Reconciler
from syncd.engine.state import StateBackend
from syncd.engine.state.kubernetes import KubernetesStateStore
from syncd.model import DestinationKind, SecretValue

CLOUDFLARE_RETRY_DEADLINE = 60.0

log = structlog.get_logger("syncd.service")


# -- Vault -----------------------------------------------------------------------------------------


def _constant(text: str) -> Callable[[], SecretValue]:
    value = SecretValue(text)
    return lambda: value


def vault_login_strategy(settings: Settings) -> LoginStrategy:
    """The login strategy for ``vault.auth``; credentials are read at login time."""
    auth = settings.vault.auth
    if isinstance(auth, TokenAuth):
        return TokenLogin(credential_from(auth.token, key="vault.auth.token"))
    if isinstance(auth, AppRoleAuth):
        return AppRoleLogin(
            _constant(auth.role_id),
            credential_from(auth.secret_id, key="vault.auth.secret_id"),
            mount_point=auth.mount,
        )
    if isinstance(auth, KubernetesAuth):
        return KubernetesLogin(auth.role, read_token_file(auth.token_file), mount_point=auth.mount)
    if isinstance(auth, JwtAuth):
        return JwtLogin(auth.role, read_token_file(auth.token_file), mount_point=auth.mount)
    raise AssertionError(f"unknown vault auth {type(auth).__name__}")  # pragma: no cover


def build_vault(
    settings: Settings,
    observer: RequestObserver = NULL_OBSERVER,
    *,
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[Any, VaultTokenManager, VaultReader]:
    """``(hvac.Client, VaultTokenManager, VaultReader)``: TLS, namespace, timeout, a pool sized to
    ``vault.concurrency`` (plus one for the token manager), the configured login."""
    connection = vault_connection(settings)  # one setting: hvac's session and the lean read path
    client = connection.hvac_client(session)
    tokens = VaultTokenManager(client, vault_login_strategy(settings), clock, observer)
    reader = VaultReader(
        client,
        observer=observer,
        clock=clock,
        token_valid=tokens.is_valid,
        on_token_refused=tokens.invalidate,
        http=connection.lean_transport(),
    )
    return client, tokens, reader


# -- Cloudflare ------------------------------------------------------------------------------------


def cloudflare_auth(cloudflare: CloudflareSettings) -> CloudflareAuth:
    auth = cloudflare.auth
    if isinstance(auth, CloudflareApiToken):
        return ApiTokenAuth(credential_from(auth.api_token, key="cloudflare.auth.api_token"))
    return GlobalKeyAuth(auth.email, credential_from(auth.global_key, key="cloudflare.auth.global_key"))


def credential_identity(cloudflare: CloudflareSettings) -> str:
    """Which credential (not its value) a Cloudflare section uses: the key of its shared pacer."""
    auth = cloudflare.auth
    if isinstance(auth, CloudflareApiToken):
        return f"token|{cloudflare.api_base}|{auth.api_token.describe()}"
    return f"global|{cloudflare.api_base}|{auth.email}|{auth.global_key.describe()}"


@dataclass
class PacerRegistry:
    """One ``Pacer`` per Cloudflare credential, created on first use."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _pacers: dict[str, Pacer] = field(default_factory=dict)

    def pacer_for(self, cloudflare: CloudflareSettings) -> Pacer:
        key = credential_identity(cloudflare)
        pacer = self._pacers.get(key)
        if pacer is None:
            pacer = Pacer(
                cloudflare.rate_limit_requests,
                cloudflare.rate_limit_window_seconds,
                clock=self.clock,
                sleep=self.sleep,
            )
            self._pacers[key] = pacer
        return pacer


def build_cloudflare(
    settings: Settings,
    observer: RequestObserver = NULL_OBSERVER,
    *,
    transport: httpx.BaseTransport | None = None,
    pacers: PacerRegistry | None = None,
    write_gate: Callable[[float], float] | None = None,
    user_agent: str = f"syncd/{syncd.__version__}",
) -> tuple[CloudflareClient, Pacer]:
    """``(CloudflareClient, Pacer)`` for ``settings.cloudflare``; the pacer is the credential's."""
    cloudflare = settings.cloudflare
    pacer = (pacers or PacerRegistry()).pacer_for(cloudflare)
    client = CloudflareClient(
        cloudflare.api_base,
        cloudflare_auth(cloudflare),
        pacer=pacer,
        transport=transport,
        timeout=cloudflare.timeout_seconds,
        observer=observer,
        retry_attempts=cloudflare.retry_attempts,
        # Per call; within a cycle the time the cycle has left bounds it too (syncd.deadlines).
        retry_deadline=min(CLOUDFLARE_RETRY_DEADLINE, settings.sync.cycle_timeout_seconds),
        pool_size=cloudflare.write_concurrency,
        write_gate=write_gate,
        user_agent=user_agent,
    )
    return client, pacer


# -- everything ------------------------------------------------------------------------------------


@dataclass
class Clients:
    """The network clients of one process, with what closes them."""

    vault: Any  # hvac.Client
    tokens: VaultTokenManager
    reader: VaultReader
    cloudflare: CloudflareClient
    pacer: Pacer
    # The Secrets Store kind: one adapter per process (its store, listing and own-write memory are
    # shared by the reconciler and the store drift check), over the same client (same pacer).
    store: SecretsStoreAdapter = field(init=False)

    def __post_init__(self) -> None:
        self.store = SecretsStoreAdapter(SecretsStoreClient(self.cloudflare))

    @property
    def versions(self) -> WorkerVersionsClient:
        """Versions, deployments and staging, over the same client (same pacer)."""
        return WorkerVersionsClient(self.cloudflare)

    def close(self) -> None:
        self.cloudflare.close()
        self.reader.close()  # the lean per-secret reads' keep-alive connections
        adapter = getattr(self.vault, "adapter", None)
        if adapter is not None:
            adapter.close()


def build_clients(
    settings: Settings,
    observer: RequestObserver = NULL_OBSERVER,
    *,
    vault_session: requests.Session | None = None,
    cloudflare_transport: httpx.BaseTransport | None = None,
    pacers: PacerRegistry | None = None,
    clock: Callable[[], float] = time.time,
    write_gate: Callable[[float], float] | None = None,
    identity: str | None = None,
) -> Clients:
    """``identity``: the replica's name (leader election), added to the Cloudflare User-Agent."""
    vault, tokens, reader = build_vault(settings, observer, session=vault_session, clock=clock)
    agent = f"syncd/{syncd.__version__}" + (f" ({identity})" if identity else "")
    cloudflare, pacer = build_cloudflare(
        settings, observer, transport=cloudflare_transport, pacers=pacers, write_gate=write_gate, user_agent=agent
    )
    return Clients(vault, tokens, reader, cloudflare, pacer)


def fingerprint_key(settings: Settings) -> bytes | None:
    """``sync.fingerprint_key`` as UTF-8 bytes (read now, once), or None for the state store's key.

    Raises ``CredentialError`` (exit code 2) when it cannot be read or is shorter than
    ``MIN_FINGERPRINT_KEY_BYTES``; the message names the variable or file, never the value.
    """
    ref = settings.sync.fingerprint_key
    if ref is None:
        return None
    key = credential_from(ref, key="sync.fingerprint_key")().reveal().encode()
    if len(key) < MIN_FINGERPRINT_KEY_BYTES:
        raise CredentialError(
            "sync.fingerprint_key",
            ref.describe(),
            f"the fingerprint key needs at least {MIN_FINGERPRINT_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`)",
        )
    return key


def build_reconciler(
    settings: Settings,
    clients: Clients,
    state: StateBackend,
    *,
    clock: Callable[[], float] = time.time,
) -> Reconciler:
    """The engine's ``Reconciler`` over the real clients and an open state store."""
    return Reconciler(
        settings,
        clients.reader,
        clients.cloudflare,
        state,
        clock=clock,
        concurrency=settings.vault.concurrency,
        fingerprint_key=fingerprint_key(settings),
        versions=clients.versions,
        destinations={DestinationKind.SECRETS_STORE: clients.store},
    )


def open_state(settings: Settings, *, exclusive: bool = True) -> StateBackend:
    """The configured state store (``[state] backend``): as its one writer (``StateLocked`` if another
    process is), or ``exclusive=False`` as a read-only reader that works while the service runs."""
    key = fingerprint_key(settings) if settings.state.backend == "kubernetes" else None
    return open_configured_state(settings, exclusive=exclusive, fingerprint_key=key)


def log_insecure_settings(settings: Settings) -> None:
    """At start-up, one warning per insecure setting (``syncd check`` prints the same). The field is
    ``setting``: a field named ``key`` would be masked by the log redaction, hiding which one."""
    for finding in insecure_settings(settings):
        log.warning("insecure setting", setting=finding.key, problem=finding.problem, fix=finding.fix)


def build_service(
    settings: Settings,
    config_path: Path | str,
    *,
    vault_session: requests.Session | None = None,
    cloudflare_transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    scheduler: SchedulerLike | None = None,
    kubernetes_transport: httpx.BaseTransport | None = None,
    apply_logging: Callable[[LoggingSettings], None] | None = None,
) -> Service:
    """The ``syncd run`` service: metrics, clients, state, reconciler, the ops HTTP server, and with
    ``[leader_election] enabled`` the Lease elector that gates every Cloudflare write.
    ``apply_logging``: how a reload applies a changed ``[logging]`` (default: the file's, on stdout)."""
    metrics = Metrics()
    service: list[Service] = []  # the elector's callbacks reach the service built below

    def started_leading() -> None:
        service[0].on_started_leading()

    def stopped_leading() -> None:
        service[0].on_stopped_leading()

    leadership = build_leadership(
        settings.leader_election,
        registry=metrics.registry,
        on_started_leading=started_leading,
        on_stopped_leading=stopped_leading,
        transport=kubernetes_transport,
    )
    if not settings.leader_election.enabled:
        LeaderMetrics(metrics.registry).set_leader(True)  # one process, the only writer
    clients = build_clients(
        settings,
        metrics,
        vault_session=vault_session,
        cloudflare_transport=cloudflare_transport,
        clock=clock,
        write_gate=write_gate(leadership),
        identity=leadership.identity if settings.leader_election.enabled else None,
    )
    state = open_state(settings)
    if isinstance(state, KubernetesStateStore):
        state.on_conflict = stopped_leading  # another writer wrote the state: step down as on a lost Lease
    reconciler = build_reconciler(settings, clients, state, clock=clock)
    drift = DriftChecker(
        settings,
        clients.versions,
        state,
        clients.pacer,
        request_cycle=lambda _: None,
        metrics=metrics,
        clock=clock,
        store=StoreDriftCheck(clients.store),
    )
    parts = ServiceParts(
        drift=drift,
        reconciler=reconciler,
        state=state,
        metrics=metrics,
        token_manager=clients.tokens,
        rate_budget=clients.pacer,
        script_health=reconciler.script_health,
        closers=[clients.close],
        leadership=leadership,
    )
    server = settings.server
    trigger_token = trigger_token_from(server.trigger_token) if server.trigger_token is not None else None
    log_insecure_settings(settings)

    def make_server(source: Service) -> OpsServer:
        return OpsServer(source, metrics, bind=server.bind, port=server.port, trigger_token=trigger_token)

    service.append(
        Service(
            settings,
            config_path,
            parts,
            clock=clock,
            scheduler=scheduler,
            server_factory=make_server if server.enabled else None,
            apply_logging=apply_logging,
        )
    )
    drift.request_cycle = service[0].request_cycle
    return service[0]
