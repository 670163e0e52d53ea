"""React at once to Vault writes: a subscriber to Vault Enterprise's event notifications.

Vault Enterprise (1.16+, also HCP Vault Dedicated) streams events over a WebSocket:
``GET /v1/sys/events/subscribe/{event_type}?json=true`` with the token in ``X-Vault-Token`` (and
``X-Vault-Namespace``); each message is a CloudEvents JSON object whose ``data.event.metadata.path``
is the request path that changed a secret (``secret/data/app``, ``secret/undelete/app``,
``kv/app``). ``VaultEventsSubscriber`` keeps one WebSocket per event type pattern open on a
background thread each, reconnecting with exponential backoff and jitter (a fresh token from
``token_provider`` at each connect, so a renewed or re-logged-in token is used), and calls
``on_write(path)`` with the same path form ``AuditListener`` gives (prefixed with the event's
namespace), so ``paths_to_mappings`` applies unchanged. Repeated paths coalesce (``WriteDispatcher``).

What the token needs: ``read`` on ``sys/events/subscribe/*`` and ``subscribe`` (with
``subscribe_event_types``) on the KV data paths. Vault sends a non-root token only events that
carry a ``data_path``: writes, patches, undeletes and metadata writes, not (soft) deletes or
destroys; polling catches those.

Community Edition and OpenBao have no event endpoint: the upgrade is answered 404 (``unsupported
path``). The subscriber then logs one warning and stops for good; polling and the socket audit
device (``syncd.app.notify.audit``) still work. A 403 (policy) is logged at warning and retried at the
slowest backoff. Like the audit listener this is a shortcut, never the source of truth: Vault
delivers events best-effort, and nothing is replayed across a reconnect.

TLS comes from the one Vault connection setting (``syncd.clients.vault_connection``); redirects to
another origin are refused (websockets would follow them with the token header). The token is sent
only as a header and never logged: the WebSocket library gets its own logger,
kept above DEBUG (its debug output prints request headers).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection

from syncd.app.notify.dispatch import WriteDispatcher, report_connections
from syncd.clients.vault_connection import VaultConnection, websocket_connect
from syncd.model import SecretValue
from syncd.retrying import Backoff

log = structlog.get_logger("syncd.vault_events")

DEFAULT_EVENT_TYPES = ("kv-v2/*", "kv-v1/*")
UNSUPPORTED_STATUSES = frozenset({404, 405})  # no such endpoint: Community Edition, OpenBao
MAX_MESSAGE_BYTES = 1 << 20
STABLE_CONNECTION_SECONDS = 30.0  # a connection that lived this long resets the backoff

# websockets logs every handshake header at DEBUG, X-Vault-Token included: its own logger, never
# below INFO, whatever the root logger's level.
_ws_logger = logging.getLogger("syncd.vault_events.websocket")
_ws_logger.setLevel(logging.INFO)

TokenProvider = Callable[[], "str | SecretValue"]


def subscribe_url(address: str, event_type: str, event_filter: str | None = None) -> str:
    """The WebSocket URL for one event type pattern (``http`` -> ``ws``, ``https`` -> ``wss``)."""
    base = address.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    query = {"json": "true"}
    if event_filter:
        query["filter"] = event_filter
    return f"{base}/v1/sys/events/subscribe/{quote(event_type, safe='/*-_.')}?{urlencode(query)}"


def event_path(message: str | bytes) -> str | None:
    """The (namespace-qualified) request path an event message reports, or None."""
    try:
        parsed = json.loads(message)
    except ValueError:
        return None
    data = parsed.get("data") if isinstance(parsed, dict) else None
    event = data.get("event") if isinstance(data, dict) else None
    metadata = event.get("metadata") if isinstance(event, dict) else None
    if not isinstance(metadata, dict) or metadata.get("modified") == "false":
        return None
    path = metadata.get("path")
    if not isinstance(path, str) or not path.strip("/"):
        return None
    path = path.strip("/")
    namespace = data.get("namespace") if isinstance(data, dict) else None
    if isinstance(namespace, str) and namespace.strip("/"):
        return f"{namespace.strip('/')}/{path}"
    return path


class VaultEventsSubscriber:
    """Background WebSockets to Vault's event endpoint; ``on_write(path)`` per changed path."""

    def __init__(
        self,
        address: str,
        token_provider: TokenProvider,
        on_write: Callable[[str], None],
        *,
        event_types: Sequence[str] = DEFAULT_EVENT_TYPES,
        namespace: str | None = None,
        event_filter: str | None = None,
        verify: bool | str = True,
        client_cert: tuple[str, str] | None = None,
        debounce_seconds: float = 0.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        open_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        rng: Callable[[], float] = random.random,
        on_connections: Callable[[int], None] | None = None,
    ) -> None:
        self._address = address
        self._token_provider = token_provider
        self._event_types = tuple(dict.fromkeys(event_types))
        self._namespace = (namespace or "").strip("/") or None
        self._filter = event_filter
        self._ssl = VaultConnection(address, verify=verify, client_cert=client_cert).tls_context()
        self._backoff_initial = backoff_initial
        self._backoff_max = max(backoff_initial, backoff_max)
        self._open_timeout = open_timeout
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        # Told the number of open WebSockets after each connect and disconnect, under ``_wakeup``
        # (so reports arrive in order): it must be quick and must not call back into here.
        self._on_connections = on_connections
        self._dispatcher = WriteDispatcher(
            on_write,
            debounce_seconds=debounce_seconds,
            clock=clock,
            thread_name="syncd-vault-events-dispatch",
            logger_name="syncd.vault_events",
        )
        self._wakeup = threading.Condition()  # guards _stopping, _connections; wakes backoff pauses
        self._stopping = False
        self._connections: dict[str, ClientConnection] = {}
        self._threads: list[threading.Thread] = []
        self._warned_unsupported = False
        self.unsupported = False  # the server has no event endpoint (Community Edition)
        self.events = 0  # messages received
        self.writes = 0  # messages that named a path (before coalescing)
        self.connects = 0  # successful handshakes

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def connected(self) -> int:
        """How many WebSockets are open now."""
        with self._wakeup:
            return len(self._connections)

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def start(self) -> VaultEventsSubscriber:
        self._dispatcher.start()
        self._threads = [
            threading.Thread(target=self._run, args=(event_type,), name=f"syncd-vault-events-{n}", daemon=True)
            for n, event_type in enumerate(self._event_types)
        ]
        for thread in self._threads:
            thread.start()
        log.info("vault event subscriber started", event_types=list(self._event_types), namespace=self._namespace)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every WebSocket, stop reconnecting, drop what waits for delivery."""
        with self._wakeup:
            if self._stopping:
                return
            self._stopping = True
            connections = list(self._connections.values())
            self._wakeup.notify_all()
        self._dispatcher.stop()
        for conn in connections:
            with contextlib.suppress(Exception):
                conn.close()
        self._dispatcher.join(timeout)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        log.info("vault event subscriber stopped")

    def __enter__(self) -> VaultEventsSubscriber:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- one WebSocket -----------------------------------------------------------------------------

    def _stopped(self) -> bool:
        with self._wakeup:
            return self._stopping

    def _run(self, event_type: str) -> None:
        failures = 0
        while not self._stopped() and not self.unsupported:
            opened_at = self._clock()
            outcome = self._session(event_type)
            if outcome == "unsupported" or self._stopped():
                return
            if outcome == "closed" and self._clock() - opened_at >= STABLE_CONNECTION_SECONDS:
                failures = 0
            failures = self._backoff_max_exponent() if outcome == "forbidden" else failures + 1
            self._pause(self._delay(failures))

    def _backoff(self) -> Backoff:
        return Backoff(initial=self._backoff_initial, maximum=self._backoff_max, jitter=self._backoff_initial)

    def _backoff_max_exponent(self) -> int:
        return self._backoff().failures_at_maximum()

    def _delay(self, failures: int) -> float:
        """``syncd.retrying``'s rule over the failures so far (jitter up to ``backoff_initial``)."""
        return self._backoff().delay(max(1, failures), self._rng)

    def _pause(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
            return
        with self._wakeup:
            if not self._stopping:
                self._wakeup.wait(seconds)

    def _session(self, event_type: str) -> str:
        """Connect and read until the connection ends: "closed", "failed", "forbidden", "unsupported"."""
        try:
            with self._connect(event_type) as conn:
                return self._read(event_type, conn)
        except InvalidStatus as exc:
            return self._refused(event_type, exc.response.status_code)
        except Exception as exc:  # OSError, TimeoutError, a handshake error, the token provider's
            log.warning("vault event subscription failed", event_type=event_type, error_code=type(exc).__name__)
            return "failed"

    def _read(self, event_type: str, conn: ClientConnection) -> str:
        with self._wakeup:
            if self._stopping:
                return "closed"
            self._connections[event_type] = conn
            self._report_connections()
        self.connects += 1
        log.info("vault event subscription open", event_type=event_type)
        reason = "closed"
        try:
            for message in conn:
                self._message(message)
        except ConnectionClosed:
            pass
        except (OSError, WebSocketException) as exc:
            log.info("vault event connection broken", event_type=event_type, error_code=type(exc).__name__)
            reason = "failed"
        finally:
            with self._wakeup:
                self._connections.pop(event_type, None)
                self._report_connections()
        if not self._stopped():
            code = None if conn.close_code is None else int(conn.close_code)
            log.info("vault event subscription closed", event_type=event_type, code=code)
        return reason

    def _report_connections(self) -> None:
        """Call with ``_wakeup`` held, so the counts arrive in order."""
        report_connections(self._on_connections, len(self._connections), "vault event")

    def _connect(self, event_type: str) -> ClientConnection:
        """The handshake happens here; a redirect to another origin is refused (the token would go
        along), see ``syncd.clients.vault_connection``."""
        token = self._token_provider()  # at each connect: the token manager may have a new one
        headers = {"X-Vault-Token": token_of(token)}
        if self._namespace:
            headers["X-Vault-Namespace"] = self._namespace
        return websocket_connect(
            subscribe_url(self._address, event_type, self._filter),
            ssl=self._ssl,
            additional_headers=headers,
            open_timeout=self._open_timeout,
            compression=None,
            max_size=MAX_MESSAGE_BYTES,
            logger=_ws_logger,
        )

    def _refused(self, event_type: str, status: int) -> str:
        if status in UNSUPPORTED_STATUSES:
            self.unsupported = True
            with self._wakeup:
                warn, self._warned_unsupported = not self._warned_unsupported, True
            if warn:
                log.warning(
                    "vault has no event notifications (Community Edition or OpenBao?): not subscribing;"
                    " polling and the audit device still work",
                    status=status,
                )
            return "unsupported"
        if status == 403:
            log.warning(
                "vault refused the event subscription: the token needs read on sys/events/subscribe/*"
                " and subscribe on the secret paths",
                event_type=event_type,
            )
            return "forbidden"
        log.warning("vault event subscription refused", event_type=event_type, status=status)
        return "failed"

    def _message(self, message: str | bytes) -> None:
        self.events += 1
        path = event_path(message)
        if path is None:
            log.debug("vault event skipped: no path", length=len(message))
            return
        self.writes += 1
        log.debug("vault write noticed", path=path, source="event")
        self._dispatcher.add(path)


def token_of(value: Any) -> str:
    """A token as text, from a ``SecretValue`` or a plain string."""
    return value.reveal() if isinstance(value, SecretValue) else str(value)


__all__ = [
    "DEFAULT_EVENT_TYPES",
    "VaultEventsSubscriber",
    "event_path",
    "subscribe_url",
    "token_of",
]
