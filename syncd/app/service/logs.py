"""Logging: one structlog pipeline for syncd's own logs and the libraries' stdlib loggers.

Every line, whether it comes from ``structlog.get_logger()`` or from hvac, httpx, urllib3 or
APScheduler through the standard library, goes through the same ``ProcessorFormatter``: UTC ISO
timestamp, level, logger name, any context bound with ``structlog.contextvars``, then redaction,
then JSON (one object a line) or the console renderer.

Redaction is defence in depth. Values are already masked by ``SecretValue``/``SecretData``/
``SecretBody``; on top of that :func:`redact_processor` masks the values of sensitive keys at any
depth, masks those types wherever they sit, and scrubs bearer tokens and Vault tokens out of free
text (a library's message, a traceback line) with ``syncd.redaction.scrub_text``, which also masks
every credential syncd holds. Tracebacks never carry local variables.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, Final, Literal, TextIO

import stamina.instrumentation
import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from syncd.errors import SyncdError
from syncd.model import MASK, SecretBody, SecretData, SecretValue
from syncd.redaction import scrub_text

__all__ = ["SENSITIVE_KEYS", "configure_logging", "redact_processor"]

LogFormat = Literal["auto", "json", "console"]

SENSITIVE_KEYS: Final[frozenset[str]] = frozenset(
    {
        "token",
        "client_token",
        "x_vault_token",
        "secret",
        "secret_id",
        "password",
        "passphrase",
        "key",
        "api_key",
        "global_key",
        "private_key",
        "authorization",
        "cookie",
        "text",
        "key_base64",
        "key_jwk",
        "value",
        "jwt",
        "credentials",
    }
)
"""Key names (lower case, ``-`` read as ``_``) whose values are always masked."""

# A key ending in "_<suffix>" is sensitive too ("cf_api_token", "approle_secret", "db_password").
# "value" and "text" are exact matches only: "exc_value" is an exception's message, not a secret.
_SENSITIVE_SUFFIXES: Final = (
    "token",
    "secret",
    "secret_id",
    "password",
    "passphrase",
    "key",
    "authorization",
    "jwt",
    "credentials",
)

_MAX_DEPTH: Final = 12

# Loggers whose INFO lines are one per request or per job run: noise at the default level.
# APScheduler logs every job added, run and finished at INFO: its lines said nothing syncd's own
# ``cycle`` lines do not, and were most of a quiet service's output.
_QUIET_LOGGERS: Final = ("httpx", "httpcore", "apscheduler")

_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def is_sensitive_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    name = key.lower().replace("-", "_")
    return name in SENSITIVE_KEYS or any(name.endswith("_" + suffix) for suffix in _SENSITIVE_SUFFIXES)


def _redact(value: Any, depth: int) -> Any:
    if isinstance(value, SecretValue | SecretData | SecretBody):
        return MASK
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= _MAX_DEPTH:
        return value if isinstance(value, int | float | bool | None) else "<nested too deep>"
    if isinstance(value, Mapping):
        return {k: MASK if is_sensitive_key(k) else _redact(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(item, depth + 1) for item in value]
    return value


def redact_processor(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Mask sensitive keys, masked types and recognisable credentials anywhere in the event.

    Nested containers are copied, never changed in place: they may belong to the caller.
    """
    for key, value in list(event_dict.items()):
        if key in ("exc_info", "_record", "_from_structlog"):
            continue
        event_dict[key] = MASK if is_sensitive_key(key) else _redact(value, 0)
    return event_dict


def _drop_formatted_message(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    # ExtraAdder copies ``record.message`` when another formatter (pytest's, say) already ran;
    # it repeats ``event``. Logging forbids "message" in ``extra``, so nothing real is lost.
    event_dict.pop("message", None)
    return event_dict


class _SyncdHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so reconfiguring replaces it instead of stacking."""


def _choose_renderer(format: LogFormat, stream: TextIO) -> Processor:
    is_tty = _is_tty(stream)
    if format == "console" or (format == "auto" and is_tty):
        # plain_traceback: no rich/better_exceptions, so no local variables in tracebacks.
        return structlog.dev.ConsoleRenderer(colors=is_tty, exception_formatter=structlog.dev.plain_traceback)
    return structlog.processors.JSONRenderer()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _exception_renderer(renderer: Processor) -> list[Processor]:
    if isinstance(renderer, structlog.dev.ConsoleRenderer):
        return []  # the console renderer formats exc_info itself (plain traceback)
    return [structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))]


def configure_logging(*, format: LogFormat = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Route structlog and the standard library through one pipeline writing to ``stream``.

    ``stream`` defaults to ``sys.stdout`` (read at call time). ``auto`` renders for a human when
    the stream is a terminal and JSON lines otherwise. Calling again replaces the configuration.
    """
    if level.lower() not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {sorted(_LEVELS)}")
    numeric_level = _LEVELS[level.lower()]
    out = stream if stream is not None else sys.stdout
    renderer = _choose_renderer(format, out)

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: tests (and a config reload) may reconfigure after loggers were created.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_formatted_message],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_exception_renderer(renderer),
            redact_processor,
            renderer,
        ],
    )
    handler = _SyncdHandler(out)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    stale = [h for h in root.handlers if isinstance(h, _SyncdHandler)]
    # The new handler first: a line logged meanwhile (a reload reconfigures a running service) is
    # never without a handler, where logging's last resort would print it to stderr unredacted.
    root.addHandler(handler)
    for existing in stale:
        root.removeHandler(existing)
    root.setLevel(numeric_level)
    logging.raiseExceptions = False  # a broken log stream must not dump unredacted records to stderr
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric_level, logging.WARNING))
    stamina.instrumentation.set_on_retry_hooks([log_retry])


def log_retry(details: stamina.instrumentation.RetryDetails) -> None:
    """One ``retry`` line per scheduled retry, instead of stamina's default, which names a retry
    block "<context block>" with empty args. The cause is named by type and syncd reason code; its
    text only for syncd's own errors, whose messages carry paths, names and codes, never values."""
    cause = details.caused_by
    fields: dict[str, Any] = {
        "attempt": details.retry_num,
        "wait_s": round(details.wait_for, 3),
        "waited_s": round(details.waited_so_far, 3),
        "error_type": type(cause).__name__,
    }
    if isinstance(cause, SyncdError):
        fields["error_code"] = cause.reason
        fields["error"] = str(cause)
    structlog.get_logger("syncd.retry").warning("retry", **fields)
