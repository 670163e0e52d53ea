"""Cloudflare's response envelope, its error codes and its rate-limit headers.

Pure functions over a status, headers and a body: no I/O, no retries. ``error_for`` is the single
place that maps an API failure to the typed errors of ``syncd.errors``.

Messages carry the method, the request path (account, script and binding names), the HTTP status,
Cloudflare's code and Cloudflare's message (from the JSON envelope only, scrubbed by
``syncd.redaction``: no header-like text, no known credential), never a request body (it holds
values), a non-envelope response body, nor a header.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from syncd.errors import (
    CloudflareAuthError,
    CloudflareError,
    CloudflareNotDeployed,
    CloudflareNotFound,
    CloudflareNoVersions,
    CloudflareRateLimited,
    CloudflareServerError,
    CloudflareValidationError,
)
from syncd.redaction import upstream_message

SCRIPT_NOT_FOUND = 10007
BINDING_NOT_FOUND = 10056
NOT_FOUND_CODES = frozenset({SCRIPT_NOT_FOUND, BINDING_NOT_FOUND, 10090})
SCRIPT_EDIT_NOT_DEPLOYED = 10214
SECRET_EDIT_NOT_DEPLOYED = 10215
NO_VERSIONS = 10222
NOT_DEPLOYED_CODES = frozenset({SCRIPT_EDIT_NOT_DEPLOYED, SECRET_EDIT_NOT_DEPLOYED})
AUTH_CODES = frozenset({9106, 9109, 10000, 1000, 6003})
RATE_LIMIT_CODES = frozenset({971, 10100})

_MAX_API_MESSAGE = 300


@dataclass(frozen=True)
class ApiFailure:
    """The first error of a failed response."""

    status: int
    code: int | None
    message: str


def parse_page(response: httpx.Response) -> tuple[Any, ApiFailure | None, dict[str, Any] | None]:
    """``(result, None, result_info)`` for a success, ``(None, failure, None)`` otherwise;
    ``result_info``: the envelope's paging object (``page``, ``per_page``, ``count``,
    ``total_count``, maybe ``total_pages``), None when absent.

    A response fails when its status is >= 400 or its envelope says ``success: false``. A body that
    is not a JSON envelope (a proxy's HTML page) fails with the status's reason phrase; the body
    text itself is not kept.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body if isinstance(body, dict) else None
    ok_status = response.status_code < 400
    if envelope is not None and ok_status and envelope.get("success", True) is not False:
        info = envelope.get("result_info")
        return envelope.get("result"), None, info if isinstance(info, dict) else None
    if envelope is None and ok_status and response.status_code == 204:
        return None, None, None
    code, message = _first_error(envelope)
    if message is None:
        message = upstream_message(response.reason_phrase, 80) or f"HTTP {response.status_code}"
        if envelope is None and ok_status:
            message = "response is not a Cloudflare API envelope"
    return None, ApiFailure(response.status_code, code, message), None


def _first_error(envelope: Mapping[str, Any] | None) -> tuple[int | None, str | None]:
    if envelope is None:
        return None, None
    errors = envelope.get("errors")
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None, None
    first = errors[0]
    raw_code = first.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    if code is None and isinstance(raw_code, str) and raw_code.isdigit():
        code = int(raw_code)
    message = first.get("message")
    text = upstream_message(str(message), _MAX_API_MESSAGE) if message is not None else None
    return code, text or None


def error_for(failure: ApiFailure, *, method: str, path: str, retry_after: float | None = None) -> CloudflareError:
    """The typed error for a failed call. ``path`` is the request path without query or host."""
    status, code = failure.status, failure.code
    code_text = f", code {code}" if code is not None else ""
    message = f"Cloudflare {method} {path}: HTTP {status}{code_text}: {failure.message}"
    kwargs: dict[str, Any] = {"status": status, "code": code, "api_message": failure.message}
    cls: type[CloudflareError]
    if status == 429 or code in RATE_LIMIT_CODES:
        if retry_after is not None:
            message += f" (retry after {retry_after:g}s)"
        return CloudflareRateLimited(message, retry_after=retry_after, **kwargs)
    if code in AUTH_CODES or status in (401, 403):
        cls = CloudflareAuthError
    elif code in NOT_FOUND_CODES:
        cls = CloudflareNotFound
    elif code in NOT_DEPLOYED_CODES:
        cls = CloudflareNotDeployed
    elif code == NO_VERSIONS:
        cls = CloudflareNoVersions
    elif status >= 500:
        cls = CloudflareServerError
    elif status == 404 and code is None:
        cls = CloudflareNotFound
    else:
        cls = CloudflareValidationError
    return cls(message, **kwargs)


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date. None when absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


_RATELIMIT_PARAM = re.compile(r";\s*([a-z]+)\s*=\s*([0-9]+(?:\.[0-9]+)?)")


def parse_ratelimit(value: str | None) -> tuple[int, float] | None:
    """``Ratelimit: "default";r=<remaining>;t=<reset seconds>`` -> ``(remaining, reset)``.

    With several comma-separated items, the one with the fewest remaining requests wins.
    """
    if not value:
        return None
    best: tuple[int, float] | None = None
    for item in value.split(","):
        params = dict(_RATELIMIT_PARAM.findall(item))
        if "r" not in params or "t" not in params:
            continue
        candidate = (int(float(params["r"])), float(params["t"]))
        if best is None or candidate[0] < best[0]:
            best = candidate
    return best
