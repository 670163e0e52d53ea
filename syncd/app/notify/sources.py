"""The two ways Vault can tell syncd about a write at once, started and stopped together.

- the ``socket`` audit device (every edition): ``[notifications] audit_listen`` (``notify.py``);
- event notifications over WebSocket (Vault Enterprise): ``vault_events`` (``vault_events.py``).

Each calls ``on_write(path)``; the service maps the path to mappings and queues a reconciliation.
Polling stays the safety net, so a source that cannot start is logged and skipped.

Given a ``NotificationMetrics`` (``syncd.app.service.metrics.Metrics`` is one), each configured source is
exported as configured (``source`` = ``"audit"`` | ``"events"``, even when it could not start, so
the disconnection alert sees it), its open connections are reported as they open and close, and
every write it delivers to ``on_write`` (after coalescing) is counted. The sources themselves only
get callables; they know nothing of metrics.

``on_connections(source, count)`` (the service's sync mode) hears the same counts;
``needed_connections`` says how many open connections make each configured source "connected"
(audit: one, from any Vault node; events: one WebSocket per event type pattern), and ``failed``
names the configured sources that could not start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

import structlog

from syncd.app.credentials import CredentialError, credential_from
from syncd.app.notify.audit import AuditListener
from syncd.app.notify.vault_events import VaultEventsSubscriber
from syncd.app.vault_tls import vault_connection
from syncd.config import CredentialRef, Settings
from syncd.model import SecretValue

log = structlog.get_logger("syncd.service")


AUDIT = "audit"
EVENTS = "events"


@runtime_checkable
class NotificationMetrics(Protocol):
    def configure_notification_sources(self, sources: Iterable[str]) -> None: ...

    def set_notification_connections(self, source: str, count: int) -> None: ...

    def count_notification(self, source: str) -> None: ...


def _counted(
    source: str, on_write: Callable[[str], None], metrics: NotificationMetrics | None
) -> Callable[[str], None]:
    if metrics is None:
        return on_write

    def deliver(path: str) -> None:
        metrics.count_notification(source)
        on_write(path)

    return deliver


def _connections_of(
    source: str, metrics: NotificationMetrics | None, observer: Callable[[str, int], None] | None
) -> Callable[[int], None] | None:
    if metrics is None and observer is None:
        return None

    def report(count: int) -> None:
        if metrics is not None:
            metrics.set_notification_connections(source, count)
        if observer is not None:
            observer(source, count)

    return report


def _prefix_of(ref: CredentialRef | None) -> Callable[[], str] | None:
    """The audit device's ``prefix`` (a shared secret), read at each new connection: a rotated
    file applies to the next connection Vault opens."""
    if ref is None:
        return None
    read = credential_from(ref, key="notifications.audit_prefix")
    return lambda: read().reveal()


def needed_connections(settings: Settings, has_token_manager: bool = True) -> dict[str, int]:
    """The configured sources, each with how many open connections make it count as connected."""
    notifications = settings.notifications
    needed: dict[str, int] = {}
    if notifications.audit_listen is not None:
        needed[AUDIT] = 1
    if notifications.vault_events and has_token_manager:
        needed[EVENTS] = len(dict.fromkeys(notifications.vault_event_types))
    return needed


class NotificationSources:
    def __init__(self) -> None:
        self.audit_listener: AuditListener | None = None
        self.vault_events: VaultEventsSubscriber | None = None
        self.failed: set[str] = set()  # configured sources that could not start

    def start(
        self,
        settings: Settings,
        on_write: Callable[[str], None],
        vault_token: Callable[[], SecretValue] | None,
        metrics: NotificationMetrics | None = None,
        on_connections: Callable[[str, int], None] | None = None,
    ) -> NotificationSources:
        notifications = settings.notifications
        if metrics is not None:
            configured = [AUDIT] if notifications.audit_listen is not None else []
            metrics.configure_notification_sources(configured + ([EVENTS] if notifications.vault_events else []))
        if notifications.audit_listen is not None:
            host, _, port = notifications.audit_listen.rpartition(":")
            prefix = _prefix_of(notifications.audit_prefix)
            try:
                if prefix is not None:
                    prefix()  # unreadable: say so now, not at Vault's first connection
                self.audit_listener = AuditListener(
                    host or "0.0.0.0",  # noqa: S104 - Vault connects to the pod's address
                    int(port),
                    _counted(AUDIT, on_write, metrics),
                    debounce_seconds=notifications.debounce_seconds,
                    on_connections=_connections_of(AUDIT, metrics, on_connections),
                    prefix=prefix,
                    allow=notifications.audit_allow,
                    max_connections=notifications.audit_max_connections,
                    unverified_timeout=notifications.audit_unverified_timeout_seconds,
                ).start()
            except (OSError, CredentialError) as exc:
                self.failed.add(AUDIT)
                log.error("vault audit listener could not start", listen=notifications.audit_listen, error=str(exc))
        if notifications.vault_events:
            if vault_token is None:
                log.warning("vault event notifications need the Vault token manager: not subscribing")
                self.failed.add(EVENTS)
            else:
                connection = vault_connection(settings)
                self.vault_events = VaultEventsSubscriber(
                    settings.vault.address,
                    vault_token,
                    _counted(EVENTS, on_write, metrics),
                    event_types=notifications.vault_event_types,
                    namespace=settings.vault.namespace,
                    verify=connection.verify,
                    client_cert=connection.client_cert,
                    debounce_seconds=notifications.debounce_seconds,
                    on_connections=_connections_of(EVENTS, metrics, on_connections),
                ).start()
        return self

    def stop(self) -> None:
        """Call outside the service's lock: stopping joins the threads that call ``on_write``."""
        if self.audit_listener is not None:
            self.audit_listener.stop()
        if self.vault_events is not None:
            self.vault_events.stop()
