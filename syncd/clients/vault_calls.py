"""One Vault call: error mapping, observation and retries, shared by reader and auth.

``vault_call`` runs a zero-argument function that makes exactly one request (through hvac, or the
reader's lean transport, ``vault_http``), maps what goes wrong to ``syncd.errors`` (see
``map_error``), reports each attempt to the observer and retries ``VaultUnavailable`` with stamina
(exponential backoff with jitter, bounded attempts and an overall deadline). The first attempt runs
without stamina (its retry context costs as much as a lean request); only when it fails with
``VaultUnavailable`` does stamina take over, starting from that failure. A ``Retry-After`` header
(Vault sends one on rate-limit quota 429s) is honoured: the next attempt waits at least that long,
and when that would pass the call's deadline the call gives up at once with ``VaultUnavailable``
instead of waiting in vain.

The deadline is the call's own ``deadline`` or the time the cycle has left (``syncd.deadlines``),
whichever is shorter: no backoff wait passes it, an attempt starts only while
``MIN_ATTEMPT_SECONDS`` are left (else ``CycleTimeout``, nothing sent), and ``StatusAwareAdapter``
clips each request's timeout to the time left.

Messages carry the operation, the Vault path and Vault's own error text from its JSON envelope
(collapsed, truncated, scrubbed by ``syncd.redaction``), never a response body that is not such an
envelope, a header, a value or a token. hvac and requests exceptions are not chained to ours (their
attributes hold response bodies and request details), so a traceback cannot show them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import hvac.adapters
import hvac.exceptions as hx
import requests
import stamina

from syncd.clients.cloudflare_errors import parse_retry_after
from syncd.clients.observe import ERROR, OK, RETRY, RequestObserver
from syncd.clients.vault_http import HttpReply, VaultTransportError
from syncd.clients.vault_redirects import RedirectRefused
from syncd.deadlines import MIN_ATTEMPT_SECONDS, attempt_timeout, time_left
from syncd.errors import (
    VaultAuthError,
    VaultError,
    VaultPermissionDenied,
    VaultSecretNotFound,
    VaultUnavailable,
)
from syncd.redaction import upstream_message
from syncd.retrying import Backoff

T = TypeVar("T")

_STATUS: dict[type[Exception], int] = {
    hx.InvalidRequest: 400,
    hx.Unauthorized: 401,
    hx.Forbidden: 403,
    hx.InvalidPath: 404,
    hx.UnsupportedOperation: 405,
    hx.PreconditionFailed: 412,
    hx.RateLimitExceeded: 429,
    hx.InternalServerError: 500,
    hx.VaultNotInitialized: 501,
    hx.BadGateway: 502,
    hx.VaultDown: 503,
}
_UNAVAILABLE = (
    hx.PreconditionFailed,
    hx.RateLimitExceeded,
    hx.InternalServerError,
    hx.VaultNotInitialized,
    hx.BadGateway,
    hx.VaultDown,
    hx.UnexpectedError,  # a status hvac does not know (without StatusAwareAdapter: maybe a 504)
)
_MAX_REASON = 200
RETRY_BACKOFF = Backoff(initial=0.2, maximum=5.0, jitter=0.2)
# hvac's exception class per status: the reason text when Vault's error list is empty.
_HVAC_NAMES = {
    400: "InvalidRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "InvalidPath",
    429: "RateLimitExceeded",
    500: "InternalServerError",
    501: "VaultNotInitialized",
    502: "BadGateway",
    503: "VaultDown",
}


class VaultHttpError(Exception):
    """An error status of the lean transport, with what ``map_error`` needs: the status, Vault's
    error text (as ``vault_reason`` would give it for hvac's exception), the ``Retry-After`` delay
    and the JSON body (a deleted version's 404 carries its metadata). Never chained or shown."""

    def __init__(self, status: int, reason: str, retry_after: float | None, body: Any) -> None:
        self.status_code = status
        self.reason = reason
        self.retry_after = retry_after
        self.json = body
        super().__init__(f"HTTP {status}")


def reply_error(reply: HttpReply) -> VaultHttpError:
    """The error for a >= 400 reply: Vault's ``errors`` from a JSON body (``Content-Type:
    application/json``), as hvac's ``JSONAdapter`` reads them. A body that is not such an envelope
    (a proxy's error page, which may echo the request's headers) is not kept: the reason is then
    the name hvac gives the status (``syncd.redaction``)."""
    body: Any = None
    errors: Any = None
    if reply.headers.get("Content-Type") == "application/json":
        try:
            body = json.loads(reply.body.decode("utf-8", "replace"))
        except ValueError:
            body = None
        errors = body.get("errors") if isinstance(body, dict) else None
    reason = _reason_from(errors) or _HVAC_NAMES.get(reply.status, "UnexpectedError")
    return VaultHttpError(reply.status, reason, parse_retry_after(reply.headers.get("Retry-After")), body)


def _reason_from(errors: Any) -> str:
    """Vault's ``errors`` (a list of strings in its envelope) as one scrubbed, short line."""
    if isinstance(errors, list):
        return upstream_message("; ".join(str(e) for e in errors), _MAX_REASON)
    return upstream_message(str(errors), _MAX_REASON) if errors else ""


def vault_reason(exc: BaseException) -> str:
    """Vault's error text from an hvac exception: its ``errors`` list, scrubbed and cut short. When
    the exception came from a response without that list (hvac keeps the raw body as its message),
    the body is not used: the exception's class name stands for it."""
    reason = _reason_from(getattr(exc, "errors", None))
    if reason:
        return reason
    from_response = getattr(exc, "text", None) is not None or getattr(exc, "json", None) is not None
    if isinstance(exc, hx.VaultError) and exc.args and exc.args[0] and not from_response:
        return upstream_message(str(exc.args[0]), _MAX_REASON)  # hvac's own text, not a server's
    return type(exc).__name__


class StatusAwareAdapter(hvac.adapters.JSONAdapter):  # type: ignore[misc]
    """hvac's JSON adapter, plus the HTTP status (``status_code``) and the ``Retry-After`` delay in
    seconds (``retry_after``, None when absent) on the exceptions it raises.

    hvac turns statuses it does not know (405, 504, 473, ...) into ``UnexpectedError`` and drops
    the status and the headers; with it, a gateway's 504 is retried and a 405 is not, and a quota's
    429 waits as long as Vault asks.
    """

    def _raise_for_error(self, method: str, url: str, response: requests.Response) -> None:
        try:
            super()._raise_for_error(method, url, response)
        except hx.VaultError as exc:
            exc.status_code = response.status_code
            exc.retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise

    def request(self, *args: Any, **kwargs: Any) -> Any:
        """The request with its timeout clipped to the time the cycle has left (if any)."""
        left = time_left()
        if math.isfinite(left) and "timeout" not in kwargs:
            configured = self._kwargs.get("timeout")
            limit = float(configured) if isinstance(configured, int | float) else math.inf
            kwargs["timeout"] = max(0.001, min(limit, left))
        return super().request(*args, **kwargs)


def retry_after_of(exc: BaseException) -> float | None:
    """Seconds Vault asked to wait (``Retry-After``, kept by ``StatusAwareAdapter``), or None."""
    seconds = getattr(exc, "retry_after", None)
    return float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None


def status_of(exc: BaseException) -> int | None:
    known = getattr(exc, "status_code", None)
    if isinstance(known, int):
        return known
    for cls, status in _STATUS.items():
        if isinstance(exc, cls):
            return status
    return None


def map_error(exc: Exception, *, operation: str, path: str, auth: bool = False) -> tuple[VaultError, str] | None:
    """The syncd error for an hvac/requests exception, and the observer's code; None if foreign.

    With ``auth=True`` (login, renew, lookup), 400/401/403 mean the credential was refused.
    """
    status = status_of(exc)
    where = f"Vault {operation} {path}"
    if isinstance(exc, VaultHttpError):
        return _status_error(exc.status_code, exc.reason, where=where, path=path, auth=auth), str(exc.status_code)
    if isinstance(exc, RedirectRefused):  # nothing was sent there; asking again would not change it
        return VaultError(f"{where}: {exc}", path=path), "redirect"
    if isinstance(exc, VaultTransportError):
        what = "timed out" if exc.kind == "timeout" else f"connection failed ({exc.cause})"
        return VaultUnavailable(f"{where}: {what}", path=path), exc.kind
    if isinstance(exc, requests.exceptions.Timeout):
        return VaultUnavailable(f"{where}: timed out", path=path), "timeout"
    if isinstance(exc, requests.exceptions.RequestException):
        return VaultUnavailable(f"{where}: connection failed ({type(exc).__name__})", path=path), "connection"
    if not isinstance(exc, hx.VaultError):
        return None
    reason = vault_reason(exc)
    code = str(status) if status is not None else "unexpected"
    message = f"{where}: HTTP {status or '?'}: {reason}"
    error: VaultError
    if isinstance(exc, hx.UnexpectedError) and status is not None:
        unavailable = status >= 500 or status in (412, 429)
    else:
        unavailable = isinstance(exc, _UNAVAILABLE)
    if unavailable:
        error = VaultUnavailable(message, path=path, status=status)
    elif isinstance(exc, hx.Unauthorized) or (auth and isinstance(exc, (hx.Forbidden, hx.InvalidRequest))):
        error = VaultAuthError(message, path=path, status=status)
    elif isinstance(exc, hx.Forbidden):
        error = VaultPermissionDenied(message, path=path, status=status)
    elif isinstance(exc, hx.InvalidPath):
        error = VaultSecretNotFound(message, path=path, status=status)
    else:
        error = VaultError(message, path=path, status=status)
    return error, code


def _status_error(status: int, reason: str, *, where: str, path: str, auth: bool) -> VaultError:
    """``map_error``'s classification for a known status (the lean transport's replies)."""
    message = f"{where}: HTTP {status}: {reason}"
    if status >= 500 or status in (412, 429):
        return VaultUnavailable(message, path=path, status=status)
    if status == 401 or (auth and status in (400, 403)):
        return VaultAuthError(message, path=path, status=status)
    if status == 403:
        return VaultPermissionDenied(message, path=path, status=status)
    if status == 404:
        return VaultSecretNotFound(message, path=path, status=status)
    return VaultError(message, path=path, status=status)


def vault_call(
    fn: Callable[[], T],
    *,
    operation: str,
    path: str,
    observer: RequestObserver,
    attempts: int,
    deadline: float,
    auth: bool = False,
    translate: Callable[[Exception], VaultError | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn`` (one hvac request) with mapping, observation and retries of VaultUnavailable.

    ``translate`` may map an exception first (e.g. a deleted version's 404); its result is
    reported and raised as is. ``clock`` and ``sleep`` time the ``Retry-After`` waits (the
    exponential backoff without one is ``RETRY_BACKOFF``, ``syncd.retrying``'s rule).
    """
    budget = min(deadline, time_left())
    retry_until = clock() + budget
    started = time.monotonic()  # stamina's clock, for what is left of its timeout
    asked: list[float | None] = [None]  # the Retry-After of the last failed attempt
    failures = [0]
    try:
        return _attempt(
            fn,
            operation=operation,
            path=path,
            observer=observer,
            auth=auth,
            translate=translate,
            last=attempts <= 1,
            asked=asked,
            retry_until=retry_until,
            clock=clock,
        )
    except VaultUnavailable as exc:
        first: VaultUnavailable = exc
    if attempts <= 1:
        raise first

    def backoff(exc: Exception) -> bool | float:
        if not isinstance(exc, VaultUnavailable):
            return False
        failures[0] += 1
        wait = asked[0]
        if wait is None:
            # syncd.retrying's rule, skipped when no attempt would fit after it.
            backoff = RETRY_BACKOFF.wait_within(
                failures[0], now=clock(), deadline=retry_until, reserve=MIN_ATTEMPT_SECONDS
            )
            return False if backoff is None else backoff
        if clock() + wait > retry_until:
            return False
        sleep(wait)
        return 0.0  # waited exactly as asked above; no backoff on top

    for attempt in stamina.retry_context(
        on=backoff,
        attempts=attempts,
        timeout=max(0.001, budget - (time.monotonic() - started)),
        **RETRY_BACKOFF.stamina_arguments(),
    ):
        with attempt:
            if attempt.num == 1:
                raise first  # the failure above, replayed: stamina decides on it and backs off
            return _attempt(
                fn,
                operation=operation,
                path=path,
                observer=observer,
                auth=auth,
                translate=translate,
                last=attempt.num >= attempts,
                asked=asked,
                retry_until=retry_until,
                clock=clock,
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _attempt(
    fn: Callable[[], T],
    *,
    operation: str,
    path: str,
    observer: RequestObserver,
    auth: bool,
    translate: Callable[[Exception], VaultError | None] | None,
    last: bool,
    asked: list[float | None],
    retry_until: float,
    clock: Callable[[], float],
) -> T:
    attempt_timeout(math.inf, f"Vault {operation} {path}")  # CycleTimeout: too late to start
    started = time.perf_counter()
    mapped: tuple[VaultError, str] | None = None
    asked[0] = None
    try:
        result = fn()
    except Exception as exc:
        asked[0] = retry_after_of(exc)
        translated = translate(exc) if translate is not None else None
        if translated is not None:
            mapped = translated, str(translated.status or status_of(exc) or "error")
        else:
            mapped = map_error(exc, operation=operation, path=path, auth=auth)
        if mapped is None:
            observer.observe("vault", operation, ERROR, "unexpected", time.perf_counter() - started)
            raise
    if mapped is not None:
        error, code = mapped
        wait = asked[0]
        too_late = wait is not None and clock() + wait > retry_until
        if too_late and isinstance(error, VaultUnavailable):
            error = VaultUnavailable(
                f"{error} (Retry-After {wait:g} s passes the call's deadline)", path=error.path, status=error.status
            )
        outcome = RETRY if error.retryable and not last and not too_late else ERROR
        observer.observe("vault", operation, outcome, code, time.perf_counter() - started)
        raise error  # outside the except block: nothing of hvac's is chained
    observer.observe("vault", operation, OK, "200", time.perf_counter() - started)
    return result


def expect_dict(value: Any, *, operation: str, path: str) -> dict[str, Any]:
    """hvac returns a ``requests.Response`` instead of a dict for a 2xx without a JSON body."""
    if not isinstance(value, dict):
        raise VaultError(f"Vault {operation} {path}: the response is not a JSON object", path=path)
    return value
