"""Templated bindings: the sandbox, its filters, and templates compiled once per config load.

A template is a Jinja2 template (``SandboxedEnvironment``: no attribute of Python internals is
reachable) made stricter still, because a template is configuration, not a program:

- ``StrictUndefined``: a missing source key is an error, never an empty string; no autoescape.
- Only the filters ``b64encode``, ``b64decode``, ``urlencode`` (a URI component: everything but
  ``A-Z a-z 0-9 - _ . ~`` percent-encoded, as ``encodeURIComponent`` and stricter), ``tojson``
  (compact, sorted keys, no HTML escaping), ``trim``, ``lower``, ``upper``, ``default``; the tests
  ``defined``, ``undefined``, ``none``; no globals (no ``range``, ``cycler``, ``joiner``,
  ``namespace``, ``lipsum``, ``dict``).
- Only expressions and ``{% if %}``: output, text, source keys (``db.password``,
  ``cfg["host"]``), literals (strings, numbers, lists, tables), filters, ``~`` (concatenation),
  comparisons, ``and``/``or``/``not``, ``is`` tests, ``x if c else y``. Everything else is refused
  when the configuration is loaded: calls (``x.upper()``, ``range(10**9)``), arithmetic (``'a' * 10**9``
  would be a memory bomb), loops, ``{% set %}``, macros, ``{% include %}``/``{% import %}``/
  ``{% extends %}`` (there is no loader either: no file is reachable), and any name that starts with
  ``_`` (``''.__class__``).
- Every name must be a source of the mapping (``check_references``).

``compile_template`` raises ``TemplateProblem`` naming the position (line, and column where it is
known); the text of the template is configuration, but the messages quote only the offending token.
Render-time problems (``TemplateDataError``) never carry a value: only the filter and the source key
the value came from (``SourceText``), see ``syncd.engine.templates``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

FILTERS = ("b64encode", "b64decode", "urlencode", "tojson", "trim", "lower", "upper", "default")
TESTS = ("defined", "undefined", "none")
MAX_TEMPLATE_CHARS = 10_000

class TemplateProblem(ValueError):
    """Why a template cannot be used, with its position (``line`` from 1, ``column`` from 1 or None)."""

    def __init__(self, why: str, line: int | None = None, column: int | None = None) -> None:
        self.why, self.line, self.column = why, line, column
        where = "" if line is None else f"line {line}" + ("" if column is None else f", column {column}")
        super().__init__(f"{why} (at {where})" if where else why)


class TemplateDataError(Exception):
    """A filter refused its input at render time. The text names the filter and where the value came
    from (``db.password``), never the value."""


class SourceText(str):
    """A source's string value that knows where it came from (``db.password``), so a filter that
    refuses it can say which key without showing the value. The sandbox hides ``_where``."""

    _where: str

    def __new__(cls, value: str, where: str) -> SourceText:
        text = super().__new__(cls, value)
        text._where = where
        return text


def where_of(value: object) -> str:
    return getattr(value, "_where", "") if isinstance(value, SourceText) else ""


def _refuse(filter_name: str, value: object, why: str) -> TemplateDataError:
    origin = where_of(value)
    return TemplateDataError(f"{filter_name}: {'the value of ' + origin if origin else 'its input'} {why}")


def _text(value: Any, filter_name: str) -> str:
    if isinstance(value, str):
        return value
    raise _refuse(filter_name, value, f"is not text (a {json_type(value)})")


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "list"
    return "table" if hasattr(value, "_plain") or isinstance(value, dict) else "value"


def _keep_origin(result: str, value: Any) -> str:
    origin = where_of(value)
    return SourceText(result, origin) if origin else result


def _b64encode(value: Any) -> str:
    return base64.b64encode(_text(value, "b64encode").encode("utf-8")).decode("ascii")


def _b64decode(value: Any) -> str:
    text = re.sub(r"\s+", "", _text(value, "b64decode"))
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse("b64decode", value, "is not base64") from None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse("b64decode", value, "does not decode to UTF-8 text") from None
    return _keep_origin(decoded, value)


def _urlencode(value: Any) -> str:
    return quote(to_text(value), safe="")


def plain(value: Any) -> Any:
    """A render value as plain JSON types (a source's table becomes a dict)."""
    unwrap = getattr(value, "_plain", None)
    if callable(unwrap):
        return unwrap()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return str(value)
    return value


def _tojson(value: Any) -> str:
    try:
        return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        raise _refuse("tojson", value, "cannot be written as JSON") from None


def to_text(value: Any) -> str:
    """What ``{{ x }}`` writes: a string as it is, anything else as its JSON text (as ``secret_text``
    bindings do with non-string Vault values)."""
    if isinstance(value, str):
        return str(value)
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _trim(value: Any) -> str:
    return _keep_origin(_text(value, "trim").strip(), value)


def _lower(value: Any) -> str:
    return _keep_origin(_text(value, "lower").lower(), value)


def _upper(value: Any) -> str:
    return _keep_origin(_text(value, "upper").upper(), value)


_JINJA_SYNTAX = ("{{", "{%", "{#")


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """One template, compiled: ``names`` are the sources it reads (first line each: ``lines``),
    ``keys`` the (source, key) pairs it names directly (``db.password``, ``cfg["host"]``)."""

    source: str
    names: frozenset[str]
    lines: tuple[tuple[str, int], ...]
    keys: tuple[tuple[str, str], ...]
    template: Any = field(compare=False, repr=False)  # a jinja2 Template (syncd.config.template_engine)

    def __str__(self) -> str:
        return self.source


def _column(source: str, line: int, token: str, *, attribute: bool = False) -> int | None:
    """Where ``token`` first appears on ``line`` as a whole name (after a ``.`` for an attribute)."""
    lines = source.splitlines() or [""]
    if not 1 <= line <= len(lines):
        return None
    before = r"(?<=\.)\s*" if attribute else r"(?<![\w.])"
    found = re.search(rf"{before}{re.escape(token)}(?!\w)", lines[line - 1])
    return None if found is None else found.start() + 1


@functools.lru_cache(maxsize=2048)
def compile_template(source: str) -> CompiledTemplate:
    """The template compiled in the sandbox, or ``TemplateProblem`` (the first problem, positioned).

    Equal texts share one compiled template (10,000 mappings with one ``DATABASE_URL`` template
    compile it once); the cache keeps the most recent 2,048 texts.
    """
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateProblem(f"a template may have at most {MAX_TEMPLATE_CHARS} characters (has {len(source)})")
    if not any(marker in source for marker in _JINJA_SYNTAX):
        raise TemplateProblem("has no {{ ... }}: a template reads at least one source key, e.g. {{ db.password }}")
    # Imported here: jinja2 and the sandbox cost ~3 MiB of RSS in every syncd process, and most
    # configurations have no template at all.
    from syncd.config.template_engine import compile_checked  # noqa: PLC0415

    return compile_checked(source)


def reference_problems(compiled: CompiledTemplate, declared: frozenset[str] | set[str]) -> list[TemplateProblem]:
    """A problem for every name the template reads that is not a source of the mapping."""
    return [
        TemplateProblem(
            f"refers to {name[:40]!r}, which is not a source of this mapping "
            f"(sources: {', '.join(sorted(declared)) or 'none'})",
            line,
            _column(compiled.source, line, name),
        )
        for name, line in compiled.lines
        if name not in declared
    ]


__all__ = [
    "FILTERS",
    "CompiledTemplate",
    "SourceText",
    "TemplateDataError",
    "TemplateProblem",
    "compile_template",
    "plain",
    "reference_problems",
    "to_text",
    "where_of",
]
