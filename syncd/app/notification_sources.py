"""The two ways Vault can tell syncd about a write at once, started and stopped together.

- the ``socket`` audit device (every edition): ``[notifications] audit_listen`` (``notify.py``);
- event notifications over WebSocket (Vault Enterprise): ``vault_events`` (``vault_events.py``).

Each calls ``on_write(path)``; the service maps the path to mappings and queues a reconciliation.
Polling stays the safety net, so a source that cannot start is logged and skipped.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from syncd.app.notify import AuditListener
from syncd.app.vault_events import VaultEventsSubscriber
from syncd.app.vault_tls import vault_client_cert, vault_verify
from syncd.config import Settings
from syncd.model import SecretValue

log = structlog.get_logger("syncd.service")


class NotificationSources:
    def __init__(self) -> None:
        self.audit_listener: AuditListener | None = None
        self.vault_events: VaultEventsSubscriber | None = None

    def start(
        self,
        settings: Settings,
        on_write: Callable[[str], None],
        vault_token: Callable[[], SecretValue] | None,
    ) -> NotificationSources:
        notifications = settings.notifications
        if notifications.audit_listen is not None:
            host, _, port = notifications.audit_listen.rpartition(":")
            try:
                self.audit_listener = AuditListener(
                    host or "0.0.0.0",  # noqa: S104 - Vault connects to the pod's address
                    int(port),
                    on_write,
                    debounce_seconds=notifications.debounce_seconds,
                ).start()
            except OSError as exc:
                log.error("vault audit listener could not start", listen=notifications.audit_listen, error=str(exc))
        if notifications.vault_events:
            if vault_token is None:
                log.warning("vault event notifications need the Vault token manager: not subscribing")
            else:
                self.vault_events = VaultEventsSubscriber(
                    settings.vault.address,
                    vault_token,
                    on_write,
                    event_types=notifications.vault_event_types,
                    namespace=settings.vault.namespace,
                    verify=vault_verify(settings),
                    client_cert=vault_client_cert(settings),
                    debounce_seconds=notifications.debounce_seconds,
                ).start()
        return self

    def stop(self) -> None:
        """Call outside the service's lock: stopping joins the threads that call ``on_write``."""
        if self.audit_listener is not None:
            self.audit_listener.stop()
        if self.vault_events is not None:
            self.vault_events.stop()
