"""Rendering a templated binding over a mapping's sources, and saying why it failed without a value.

Each source is handed to the template as a ``SourceView``: its keys are reachable as ``db.password``
or ``db["password"]`` and nothing else (no method of a dict shadows a Vault key named ``keys``);
string values are ``SourceText``, so a filter that refuses one names the key it came from.

Template engines put values into their exception messages (``'abc' is not a number``, an undefined
attribute's repr). No text of an exception raised while rendering is ever used: ``render`` turns
every failure into a ``TemplateRenderError`` whose message is built here from names only (the source,
the key, the filter), and it is raised outside the ``except`` block, so no chained exception (or its
traceback's frames) travels with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from syncd.config.templates import CompiledTemplate, SourceText, TemplateDataError, plain, to_text
from syncd.model import SecretVersion


class TemplateRenderError(Exception):
    """Why a template could not be rendered: source and key names, never a value."""


class SourceView:
    """One source's data as a template sees it: keys only, values wrapped with where they came from."""

    __slots__ = ("_data", "_where")

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self._data = data
        self._where = where

    def __getitem__(self, key: object) -> Any:
        if not isinstance(key, str) or key not in self._data:
            raise KeyError(None)  # no key (it may come from data) in the message: jinja makes it undefined
        return _wrap(self._data[key], f"{self._where}.{key}")

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def _plain(self) -> dict[str, Any]:
        return {key: plain(value) for key, value in self._data.items()}

    def __repr__(self) -> str:
        return f"SourceView({self._where})"

    __str__ = __repr__


def _wrap(value: Any, where: str) -> Any:
    if isinstance(value, str):
        return SourceText(value, where)
    if isinstance(value, dict):
        return SourceView(value, where)
    if isinstance(value, list):
        return [_wrap(item, f"{where}[{index}]") for index, item in enumerate(value)]
    return value


def _where(read: SecretVersion) -> str:
    return f"{read.ref} v{read.version}" if read.version is not None else str(read.ref)


def _missing_keys(template: CompiledTemplate, reads: Mapping[str, SecretVersion]) -> list[str]:
    return [
        f"key {key!r} is missing from source {name!r} ({_where(reads[name])})"
        for name, key in template.keys
        if name in reads and key not in reads[name].data
    ]


def render(template: CompiledTemplate, reads: Mapping[str, SecretVersion]) -> str:
    """The template's text over the read sources (by name). Raises ``TemplateRenderError``."""
    # Here, not at the top: a process whose configuration has no template never loads jinja2.
    from jinja2.exceptions import SecurityError, UndefinedError  # noqa: PLC0415

    context = {name: SourceView(read.data.reveal(), name) for name, read in reads.items() if name in template.names}
    why: str | None = None
    try:
        return to_text(template.template.render(context))
    except TemplateDataError as exc:
        why = str(exc)  # built by our filters from names only
    except UndefinedError:
        missing = _missing_keys(template, reads)
        why = "; ".join(missing) if missing else "refers to a key or source that is not defined"
    except SecurityError:
        why = "refused by the template sandbox"
    except Exception as exc:  # never the text: it may quote a value
        why = f"could not be rendered ({type(exc).__name__})"
    raise TemplateRenderError(why)


__all__ = ["SourceView", "TemplateRenderError", "render"]
