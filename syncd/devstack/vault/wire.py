"""Vault's wire format: the response envelope, error bodies, timestamps and Go durations.

Verified against hashicorp/vault ``sdk/logical/response_util.go`` (``RespondError``: an error body
is ``{"errors": [...]}``, an empty list when there is no message, written by Go's JSON encoder,
so compact and followed by a newline) and ``http/logical.go`` (415 text for PATCH without
``application/merge-patch+json``, 405 with an empty error list for unknown verbs).

Go errors that pass through Vault's core (permission denied, unsupported operation) are wrapped
by ``go-multierror``; :func:`multi_error` renders that text exactly.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from syncd.devstack.httpkit import Response

JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}
NO_BODY_HEADERS = {"Cache-Control": "no-store"}

PERMISSION_DENIED = "permission denied"
INVALID_TOKEN = "invalid token"
UNSUPPORTED_OPERATION = "unsupported operation"


class VaultError(Exception):
    """Raised by handlers; becomes ``{"errors": messages}`` with ``status``."""

    def __init__(self, status: int, *messages: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {'; '.join(messages)}")
        self.status = status
        self.messages = list(messages)
        self.headers = dict(headers or {})


def multi_error(*messages: str) -> str:
    """The text ``go-multierror`` produces for one or more wrapped errors."""
    if len(messages) == 1:
        return f"1 error occurred:\n\t* {messages[0]}\n\n"
    points = "".join(f"\n\t* {message}" for message in messages)
    return f"{len(messages)} errors occurred:{points}\n\n"


def dumps(payload: Any) -> bytes:
    """Compact JSON with the trailing newline Go's ``json.Encoder`` writes."""
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    all_headers = dict(JSON_HEADERS)
    all_headers.update(headers or {})
    return Response(status, dumps(payload), all_headers)


def error_response(status: int, *messages: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"errors": list(messages)}, headers)


def no_content() -> Response:
    return Response(204, b"", dict(NO_BODY_HEADERS))


def envelope(
    data: Any = None,
    *,
    lease_duration: int = 0,
    renewable: bool = False,
    warnings: list[str] | None = None,
    auth: dict[str, Any] | None = None,
    mount_type: str = "",
) -> dict[str, Any]:
    """The standard response body, keys in Vault's order; ``data`` keys sorted as Go marshals maps."""
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": renewable,
        "lease_duration": lease_duration,
        "data": sort_maps(data),
        "wrap_info": None,
        "warnings": warnings or None,
        "auth": auth,
        "mount_type": mount_type,
    }


def sort_maps(value: Any) -> Any:
    """Go's ``encoding/json`` writes map keys in sorted order, at every level."""
    if isinstance(value, dict):
        return {key: sort_maps(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sort_maps(item) for item in value]
    return value


def rfc3339(timestamp: float) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: nanoseconds with trailing zeros trimmed, then ``Z``."""
    nanos = round(timestamp * 1_000_000_000)
    seconds, fraction = divmod(nanos, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for whole seconds: ``0s``, ``1m30s``, ``768h0m0s``."""
    total = int(seconds)
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any, field: str = "ttl") -> int:
    """Seconds from Vault's duration inputs (``parseutil.ParseDurationSecond``): int, "90", "1h30m", "2d"."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise VaultError(400, f"invalid {field}: {value!r}")
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if not re.fullmatch(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+", text):
        raise VaultError(400, f"error parsing {field}: time: invalid duration {text!r}")
    return int(sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text)))


def parse_bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "t", "true", "yes")


def parse_int(value: Any, field: str) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise VaultError(400, f"invalid value for {field}: {value!r}") from exc


def string_list(value: Any) -> list[str]:
    """Vault's ``TypeCommaStringSlice``: a list, or a comma-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return [str(value)]


def raw_json_response(status: int, payload: Any) -> Response:
    """A body a backend marshalled itself (``logical.RespondWithStatusCode``): no trailing newline."""
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), dict(JSON_HEADERS))
