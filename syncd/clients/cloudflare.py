"""The Cloudflare Workers secrets client (implements ``syncd.engine.ports.WorkerSecrets``).

One ``httpx.Client`` (base URL, transport and timeouts from outside), one ``Pacer`` shared per
credential, typed errors from ``cloudflare_errors``. Every attempt:

1. takes a pacer slot (waiting if our window, the server's ``Ratelimit`` budget or a 429 pause
   says so; failing fast with ``RateBudgetExhausted`` when that would pass the call's deadline);
2. sends the request with auth headers built just now (a rotated credential file takes effect
   on the next request);
3. reports the answer's ``Ratelimit`` header to the pacer's slot (with slow start, the first
   request after an idle period goes alone and releases the others by what this header says),
   parses the envelope, maps failures to errors.

Retries (stamina's loop, bounded attempts and an overall deadline; the waits are
``syncd.retrying``'s one backoff rule with ``RETRY_BACKOFF``'s numbers) only for 429, 5xx, timeouts
and connection errors. The overall deadline is ``retry_deadline`` or the time
the cycle has left (``syncd.deadlines``), whichever is shorter: a backoff or pacer wait that would
pass it is not taken (the last error is raised), an attempt is started only while
``MIN_ATTEMPT_SECONDS`` are left (else ``CycleTimeout``, nothing sent) and with its timeout clipped
to the time left. A 429's ``Retry-After`` is honoured exactly: the
client calls ``pacer.pause_until(now + retry_after)`` (every caller sharing the pacer waits) and
the stamina backoff hook returns ``0.0`` for that error, so the only wait is the pacer's, which is
at least ``Retry-After`` long. When ``Retry-After`` would pass the deadline, the 429 is raised.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import stamina

from syncd.clients.cloudflare_errors import (
    BINDING_NOT_FOUND,
    SCRIPT_NOT_FOUND,
    ApiFailure,
    error_for,
    parse_page,
    parse_ratelimit,
    parse_retry_after,
)
from syncd.clients.observe import ERROR, NULL_OBSERVER, OK, RETRY, RequestObserver
from syncd.clients.pacer import Pacer, RateBudgetExhausted
from syncd.deadlines import MIN_ATTEMPT_SECONDS, attempt_timeout, time_left
from syncd.errors import (
    CloudflareAuthError,
    CloudflareError,
    CloudflareNotFound,
    CloudflareRateLimited,
    CloudflareTransportError,
)
from syncd.model import RemoteSecret, SecretBody, SecretValue, Target
from syncd.retrying import Backoff

MAX_BULK = 100
RETRY_BACKOFF = Backoff(initial=0.5, maximum=30.0, jitter=1.0)
DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4"


class ApiTokenAuth:
    """``Authorization: Bearer <token>``; the token is read on every request."""

    __slots__ = ("_token",)
    kind = "api_token"

    def __init__(self, token: Callable[[], SecretValue]) -> None:
        self._token = token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token().reveal()}"}

    def __repr__(self) -> str:
        return "ApiTokenAuth(***)"


class GlobalKeyAuth:
    """The legacy ``X-Auth-Email`` + ``X-Auth-Key`` (Global API Key) pair."""

    __slots__ = ("_key", "email")
    kind = "global_key"

    def __init__(self, email: str, key: Callable[[], SecretValue]) -> None:
        self.email = email
        self._key = key

    def headers(self) -> dict[str, str]:
        return {"X-Auth-Email": self.email, "X-Auth-Key": self._key().reveal()}

    def __repr__(self) -> str:
        return f"GlobalKeyAuth(email={self.email!r}, key=***)"


CloudflareAuth = ApiTokenAuth | GlobalKeyAuth


def _q(part: str) -> str:
    return quote(part, safe="")


def script_path(target: Target) -> str:
    """The script's path under the API base, for plain and dispatch-namespace scripts."""
    account = f"/accounts/{_q(target.account_id)}/workers"
    if target.dispatch_namespace:
        return f"{account}/dispatch/namespaces/{_q(target.dispatch_namespace)}/scripts/{_q(target.script)}"
    return f"{account}/scripts/{_q(target.script)}"


class CloudflareClient:
    def __init__(
        self,
        api_base: str,
        auth: CloudflareAuth,
        *,
        pacer: Pacer,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 15.0,
        observer: RequestObserver = NULL_OBSERVER,
        retry_attempts: int = 5,
        retry_deadline: float = 60.0,
        wall_clock: Callable[[], float] = time.time,
        pool_size: int = 20,
        write_gate: Callable[[float], float] | None = None,
        user_agent: str = "syncd",
    ) -> None:
        """``pool_size``: keep-alive connections kept open (at least the writers that run at once).

        ``write_gate(timeout)`` runs before every attempt of a write (any method but GET) and returns
        the timeout the attempt may have (at most the one given), or raises (``LeadershipLost``) to
        refuse it. Leader election passes one: a write ends before the leader's right to write does.
        ``user_agent`` names syncd (and, with replicas, which one) in Cloudflare's audit log.
        """
        self._write_gate = write_gate
        self._auth = auth
        self._pacer = pacer
        self._observer = observer
        self._attempts = retry_attempts
        self._deadline = retry_deadline
        self._wall_clock = wall_clock
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=api_base.rstrip("/"),
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json", "User-Agent": user_agent},
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max(100, pool_size), max_keepalive_connections=max(20, pool_size)),
        )

    def __repr__(self) -> str:
        return f"CloudflareClient({str(self._http.base_url)!r}, auth={self._auth!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CloudflareClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- WorkerSecrets ----------------------------------------------------------------------

    def list_secrets(self, target: Target) -> Sequence[RemoteSecret]:
        result = self._call("GET", f"{script_path(target)}/secrets", operation="list_secrets")
        if result is None:
            return []
        if not isinstance(result, list):
            raise CloudflareError(f"Cloudflare GET {script_path(target)}/secrets: result is not a list", status=200)
        return [
            RemoteSecret(name=str(item["name"]), kind=str(item.get("type", "")))
            for item in result
            if isinstance(item, dict) and "name" in item
        ]

    def bulk_update(self, target: Target, changes: Mapping[str, SecretBody | None]) -> None:
        if len(changes) > MAX_BULK:
            raise ValueError(f"bulk_update: {len(changes)} names, at most {MAX_BULK} per request")
        if not changes:
            return
        secrets: dict[str, Any] = {}
        for name, body in changes.items():
            if body is not None and body.name != name:
                raise ValueError(f"bulk_update: key {name!r} does not match its body's name {body.name!r}")
            secrets[name] = None if body is None else body.reveal()
        self._call("PATCH", f"{script_path(target)}/secrets-bulk", operation="bulk_update", json={"secrets": secrets})

    def put_secret(self, target: Target, body: SecretBody) -> None:
        self._call("PUT", f"{script_path(target)}/secrets", operation="put_secret", json=body.reveal())

    def delete_secret(self, target: Target, name: str) -> None:
        path = f"{script_path(target)}/secrets/{_q(name)}"
        try:
            self._call("DELETE", path, operation="delete_secret", params={"url_encoded": "true"})
        except CloudflareNotFound as exc:
            if exc.code != BINDING_NOT_FOUND:
                raise

    # -- extras -----------------------------------------------------------------------------

    def verify_token(self, account_id: str | None = None) -> None:
        """Check the credential. API tokens: the verify endpoint (account-owned tokens with
        ``account_id``) and ``status == "active"``; email + global key: ``GET /user``."""
        if isinstance(self._auth, GlobalKeyAuth):
            self._call("GET", "/user", operation="verify_token")
            return
        path = f"/accounts/{_q(account_id)}/tokens/verify" if account_id else "/user/tokens/verify"
        result = self._call("GET", path, operation="verify_token")
        status = result.get("status") if isinstance(result, dict) else None
        if status != "active":
            raise CloudflareAuthError(
                f"Cloudflare GET {path}: token status is {status!r}, not 'active'",
                status=200,
                api_message=f"token status {status}",
            )

    def script_exists(self, target: Target) -> bool:
        try:
            self.list_secrets(target)
        except CloudflareNotFound as exc:
            if exc.code == SCRIPT_NOT_FOUND:
                return False
            raise
        return True

    # -- the request machinery --------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One API call through the pacer, retries and typed errors; the envelope's ``result``."""
        return self._call(method, path, operation=operation, json=json, params=params, headers=headers)

    def request_page(
        self, path: str, *, operation: str, params: Mapping[str, str]
    ) -> tuple[Any, dict[str, Any] | None]:
        """One ``GET`` of a listing, as ``request``: ``(result, result_info)`` (None when absent)."""
        answer: tuple[Any, dict[str, Any] | None] = self._call(
            "GET", path, operation=operation, params=params, with_info=True
        )
        return answer

    def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        with_info: bool = False,
    ) -> Any:
        budget = min(self._deadline, time_left())
        deadline = self._pacer.clock() + budget
        failures = 0

        def backoff(exc: Exception) -> bool | float:
            nonlocal failures
            failures += 1
            if isinstance(exc, RateBudgetExhausted) or not isinstance(exc, CloudflareError):
                return False
            if isinstance(exc, CloudflareRateLimited) and exc.retry_after is not None:
                if self._pacer.clock() + exc.retry_after > deadline:
                    return False
                return 0.0  # the pacer's pause (set in _attempt) does the waiting, exactly
            if not exc.retryable:
                return False
            # Computed here, not left to stamina, so that a wait that would leave no time for the
            # next attempt is not taken at all.
            wait = RETRY_BACKOFF.wait_within(
                failures, now=self._pacer.clock(), deadline=deadline, reserve=MIN_ATTEMPT_SECONDS
            )
            return False if wait is None else wait

        for attempt in stamina.retry_context(
            on=backoff,
            attempts=self._attempts,
            timeout=max(budget, 0.001),
            **RETRY_BACKOFF.stamina_arguments(),
        ):
            with attempt:
                return self._attempt(
                    method,
                    path,
                    operation=operation,
                    json=json,
                    params=params,
                    headers=headers,
                    deadline=deadline,
                    last=attempt.num >= self._attempts,
                    with_info=with_info,
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any,
        params: Mapping[str, str] | None,
        deadline: float,
        last: bool,
        headers: Mapping[str, str] | None = None,
        with_info: bool = False,
    ) -> Any:
        # A slot is only worth taking if an attempt still fits after it before the cycle's deadline.
        left = time_left()
        if math.isfinite(left):
            deadline = min(deadline, self._pacer.clock() + left - min(MIN_ATTEMPT_SECONDS, self._timeout))
        with self._pacer.slot(deadline) as slot:
            timeout = attempt_timeout(self._timeout, f"Cloudflare {method} {path}")
            if self._write_gate is not None and method != "GET":
                timeout = self._write_gate(timeout)
            started = time.perf_counter()
            transport_error: CloudflareTransportError | None = None
            try:
                sent = {**(headers or {}), **self._auth.headers()}
                response = self._http.request(method, path, json=json, params=params, headers=sent, timeout=timeout)
            except httpx.TimeoutException as exc:
                kind, what = "timeout", f"timed out ({type(exc).__name__})"
                transport_error = CloudflareTransportError(f"Cloudflare {method} {path}: {what}")
            except httpx.TransportError as exc:
                kind, what = "connection", f"connection failed ({type(exc).__name__})"
                transport_error = CloudflareTransportError(f"Cloudflare {method} {path}: {what}")
            except httpx.HTTPError as exc:
                # DecodingError (a proxy's bad Content-Encoding), TooManyRedirects, ...: the response
                # is unusable. Typed, so it fails this call's mappings only instead of the whole cycle.
                kind, what = "response", f"unusable response ({type(exc).__name__})"
                transport_error = CloudflareTransportError(f"Cloudflare {method} {path}: {what}")
            if transport_error is not None:
                # Raised outside the except block: the httpx exception (which holds the request and
                # its body) is neither the cause nor the context of ours.
                self._observe(operation, ERROR if last else RETRY, kind, started)
                raise transport_error
            slot.answered(parse_ratelimit(response.headers.get("ratelimit")))  # before a 429's pause
            result, failure, info = parse_page(response)
            if failure is None:
                self._observe(operation, OK, str(response.status_code), started)
                return (result, info) if with_info else result
            error = self._error(failure, method, path, response)
            outcome = RETRY if error.retryable and not last else ERROR
            self._observe(operation, outcome, str(failure.code or failure.status), started)
            raise error

    def _error(self, failure: ApiFailure, method: str, path: str, response: httpx.Response) -> CloudflareError:
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=self._wall_clock)
        error = error_for(failure, method=method, path=path, retry_after=retry_after)
        if isinstance(error, CloudflareRateLimited) and retry_after is not None:
            self._pacer.pause_for(retry_after)
        return error

    def _observe(self, operation: str, outcome: str, code: str, started: float) -> None:
        self._observer.observe("cloudflare", operation, outcome, code, time.perf_counter() - started)
