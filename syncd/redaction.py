"""Scrubbing text that may hold a credential: one place, used by the logs, the clients and the state.

Two kinds of text need it:

- **Free text in logs** (a library's message, a traceback line): ``scrub_text`` masks what can be
  recognised as a credential (``Bearer``/``Basic`` values, ``X-Vault-Token: ...``-style headers,
  Vault ``hvs.``/``hvb.``/``hvr.`` tokens) and every credential syncd itself holds (see below).
  ``syncd.app.service.logs`` runs it over every log event.
- **What an upstream said** (an error page, an API's error message): it ends up in exception
  messages, in the state (``last_error``), ``/status`` and CLI output. ``upstream_message`` keeps
  only the API's own message (the caller passes what it took from a JSON envelope, never a raw
  body), cuts it short and scrubs it; ``scrub_error`` is the same scrubbing for text about to be
  kept (the state, the status document), so an error built anywhere passes through it once more.
  Header-like content (a line starting ``Name-With-Dashes: value``, ``Authorization: ...``,
  ``Cookie: ...``, and ``X-Anything: value`` anywhere) is replaced whole: a proxy that echoes the
  request's headers into its error page must not get them kept, whatever their names.

**Known credentials.** Whatever syncd reads as a credential (the Vault token it logged in with, the
Cloudflare token or key, the trigger token, an AppRole secret id) is remembered here
(``remember_credential``) and masked wherever it appears, even in text no pattern recognises. At
most ``_MAX_KNOWN`` values are kept (the most recent: tokens rotate), only in this process's memory,
where the clients hold them anyway; values shorter than ``_MIN_KNOWN`` characters are not
remembered (masking them would mangle ordinary words).

This module is at the top of the package (beside ``errors`` and ``model``) so that the clients,
the engine and the app can all use it: layers only point down.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Final

from syncd.model import MASK

HEADER_MASK: Final = "[header removed]"
MAX_UPSTREAM_MESSAGE: Final = 300  # characters of an upstream's own error message that are kept

_MIN_KNOWN: Final = 8
_MAX_KNOWN: Final = 64

_CREDENTIAL_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s\"',;]+"), r"\1\2" + MASK),
    (
        re.compile(
            r"(?i)(x-vault-token|x-auth-key|x-auth-email|authorization|client_token|cookie)"
            r"([\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]+"
        ),
        r"\1\2" + MASK,
    ),
    (re.compile(r"\bhv[sbr]\.[A-Za-z0-9_\-]{20,}"), MASK),  # Vault service/batch/recovery tokens
)

# What an echoed request looks like: a line that starts with a header ("Name-With-Dashes: value",
# "Authorization: ...", "Cookie: ...", "Host: ..."), up to its end; and, anywhere in a line, an
# "X-Something: value" pair. Only line starts, so "scripts/app-worker: HTTP 409" stays whole.
_HEADER_LINE: Final = re.compile(
    r"(?im)^[ \t]*(?:<[^>\n]*>)*[ \t]*"  # the line's start, after any markup
    r"(?:[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+|authorization|cookie|host)[ \t]*:[^\r\n]*"
)
_X_HEADER: Final = re.compile(r"\bX-[A-Za-z0-9-]+[ \t]*:[ \t]*[^\s,;]+")


_known_lock = threading.Lock()
_known: OrderedDict[str, None] = OrderedDict()
_known_pattern: re.Pattern[str] | None = None


def remember_credential(value: str) -> None:
    """Mask ``value`` wherever ``scrub_text``/``scrub_error`` meet it from now on."""
    global _known_pattern  # noqa: PLW0603 - one process-wide list, rebuilt on change
    value = value.strip()
    if len(value) < _MIN_KNOWN:
        return
    with _known_lock:
        if value in _known:
            _known.move_to_end(value)
            return
        _known[value] = None
        while len(_known) > _MAX_KNOWN:
            _known.popitem(last=False)
        longest_first = sorted(_known, key=len, reverse=True)
        _known_pattern = re.compile("|".join(re.escape(v) for v in longest_first))


def forget_credentials() -> None:
    """Forget every remembered credential (tests)."""
    global _known_pattern  # noqa: PLW0603
    with _known_lock:
        _known.clear()
        _known_pattern = None


def _mask_known(text: str) -> str:
    pattern = _known_pattern
    return pattern.sub(MASK, text) if pattern is not None else text


def scrub_text(text: str) -> str:
    """Mask credentials in free text: recognisable ones and every remembered one."""
    for pattern, replacement in _CREDENTIAL_PATTERNS:
        text = pattern.sub(replacement, text)
    return _mask_known(text)


def scrub_error(text: str, limit: int = 2 * MAX_UPSTREAM_MESSAGE) -> str:
    """Text about to be kept (state, ``/status``, CLI): header-like content removed, credentials
    masked, whitespace collapsed, cut to ``limit`` characters."""
    text = _X_HEADER.sub(HEADER_MASK, _HEADER_LINE.sub(HEADER_MASK, _mask_known(text)))
    text = scrub_text(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def upstream_message(message: str | None, limit: int = MAX_UPSTREAM_MESSAGE) -> str:
    """An upstream API's own error message (taken from its JSON envelope), fit to keep: scrubbed
    (``scrub_error``) and cut to ``limit`` characters. ``None`` or blank gives ``""``."""
    if not message:
        return ""
    return scrub_error(message, limit)


__all__ = [
    "HEADER_MASK",
    "MASK",
    "MAX_UPSTREAM_MESSAGE",
    "forget_credentials",
    "remember_credential",
    "scrub_error",
    "scrub_text",
    "upstream_message",
]
