"""The Vault TLS settings as the HTTP clients take them (the hvac session and the event WebSocket).

In ``syncd.app``, not ``syncd.app.service``: the service's wiring and ``syncd.app.notify`` both use it,
and notify imports nothing of the service."""

from __future__ import annotations

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
