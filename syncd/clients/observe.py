"""Per-request observation hook shared by the Vault and Cloudflare clients.

Both clients call :meth:`RequestObserver.observe` exactly once per HTTP attempt (a retried call
reports each attempt). The app adapts it to Prometheus; tests record the calls. Observers get
labels only (service, operation, outcome, code, duration), never paths' contents or values.

``outcome`` is one of ``"ok"``, ``"error"`` (final, not retried) or ``"retry"`` (the attempt
failed with a retryable error and another attempt may follow). ``code`` is the HTTP status, the
Cloudflare error code when the envelope carries one, or ``"timeout"`` / ``"connection"``.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

Service = Literal["vault", "cloudflare"]
Outcome = Literal["ok", "error", "retry"]

OK: Final = "ok"
ERROR: Final = "error"
RETRY: Final = "retry"


class RequestObserver(Protocol):
    def observe(self, service: Service, operation: str, outcome: str, code: str, seconds: float) -> None:
        """Called once per HTTP attempt. Must be cheap and must not raise."""
        ...


class _NullObserver:
    __slots__ = ()

    def observe(self, service: Service, operation: str, outcome: str, code: str, seconds: float) -> None:
        return None

    def __repr__(self) -> str:
        return "NULL_OBSERVER"


NULL_OBSERVER: Final[RequestObserver] = _NullObserver()
