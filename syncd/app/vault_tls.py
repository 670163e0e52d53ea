"""The one Vault connection setting (``VaultConnection``) built from ``[vault]``: the hvac client,
the lean read path and the event WebSocket are all made from it (``syncd.clients.vault_connection``).

In ``syncd.app``, not ``syncd.app.service``: the service's wiring and ``syncd.app.notify`` both use it,
and notify imports nothing of the service."""

from __future__ import annotations

from syncd.clients.vault_connection import VaultConnection
from syncd.config import Settings


def vault_verify(settings: Settings) -> bool | str:
    """False (never in production), a CA bundle path, or True for the system store."""
    tls = settings.vault.tls
    if not tls.verify:
        return False
    return str(tls.ca_bundle) if tls.ca_bundle is not None else True


def vault_client_cert(settings: Settings) -> tuple[str, str] | None:
    tls = settings.vault.tls
    return (str(tls.client_cert), str(tls.client_key)) if tls.client_cert and tls.client_key else None


def vault_connection(settings: Settings, *, extra_pool: int = 1) -> VaultConnection:
    """How to reach ``[vault]``: a pool of ``vault.concurrency`` plus ``extra_pool`` (the token
    manager's), the TLS options, the namespace, the timeout, the proxies of the environment."""
    vault = settings.vault
    return VaultConnection.resolve(
        vault.address,
        namespace=vault.namespace,
        timeout=vault.timeout_seconds,
        verify=vault_verify(settings),
        client_cert=vault_client_cert(settings),
        pool_size=vault.concurrency + extra_pool,
    )
