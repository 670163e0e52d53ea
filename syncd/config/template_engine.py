"""The jinja2 side of templated bindings: the sandbox, the shape rules, compiling.

Imported only when a configuration has a template (``syncd.config.templates.compile_template``)
or one is rendered (``syncd.engine.templates``): a process without templates never loads jinja2.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import TemplateAssertionError
from jinja2.filters import do_default
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.tests import test_defined, test_none, test_undefined

from syncd.config.templates import (
    FILTERS,
    TESTS,
    CompiledTemplate,
    TemplateProblem,
    _b64decode,
    _b64encode,
    _column,
    _lower,
    _tojson,
    _trim,
    _upper,
    _urlencode,
    to_text,
)

_ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Filter,
    nodes.Test,
    nodes.Keyword,
    nodes.Concat,
    nodes.CondExpr,
    nodes.If,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.List,
    nodes.Tuple,
    nodes.Dict,
    nodes.Pair,
)
_REFUSED_WHY: dict[type[nodes.Node], str] = {
    nodes.Call: "calls are not allowed (use a filter: x | upper)",
    nodes.For: "loops are not allowed",
    nodes.Assign: "{% set %} is not allowed",
    nodes.AssignBlock: "{% set %} is not allowed",
    nodes.Macro: "macros are not allowed",
    nodes.CallBlock: "{% call %} is not allowed",
    nodes.Include: "{% include %} is not allowed (no file is reachable from a template)",
    nodes.Import: "{% import %} is not allowed (no file is reachable from a template)",
    nodes.FromImport: "{% from ... import %} is not allowed (no file is reachable from a template)",
    nodes.Extends: "{% extends %} is not allowed (no file is reachable from a template)",
    nodes.BinExpr: "arithmetic is not allowed (use ~ to join text)",
    nodes.UnaryExpr: "arithmetic is not allowed",
}


class _Sandbox(ImmutableSandboxedEnvironment):
    """The one environment of every template: no loader, no globals, our filters and tests only."""

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, finalize=to_text, cache_size=0)
        self.globals.clear()
        self.filters = {
            "b64encode": _b64encode,
            "b64decode": _b64decode,
            "urlencode": _urlencode,
            "tojson": _tojson,
            "trim": _trim,
            "lower": _lower,
            "upper": _upper,
            "default": do_default,
        }
        self.tests = {"defined": test_defined, "undefined": test_undefined, "none": test_none}


@functools.cache
def sandbox() -> _Sandbox:
    """The one environment of every template (made on first use)."""
    return _Sandbox()


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def _shape_problems(source: str, tree: nodes.Template) -> Iterator[TemplateProblem]:
    for node in _walk(tree):
        line = getattr(node, "lineno", None)
        if not isinstance(node, _ALLOWED_NODES):
            why = next((w for kind, w in _REFUSED_WHY.items() if isinstance(node, kind)), None)
            yield TemplateProblem(why or f"{type(node).__name__.lower()} is not allowed", line)
        elif isinstance(node, nodes.Name) and node.name.startswith("_"):
            column = _column(source, line or 1, node.name)
            yield TemplateProblem(f"name {node.name[:40]!r} is not allowed", line, column)
        elif isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            yield TemplateProblem(
                f"attribute {node.attr[:40]!r} is not allowed",
                line,
                _column(source, line or 1, node.attr, attribute=True),
            )
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            key = node.arg.value
            if isinstance(key, str) and key.startswith("_"):
                yield TemplateProblem(f"key {key[:40]!r} is not allowed (it starts with _)", line)
        elif isinstance(node, nodes.Filter) and node.name not in FILTERS:
            yield TemplateProblem(
                f"unknown filter {node.name[:40]!r} (filters: {', '.join(FILTERS)})",
                line,
                _column(source, line or 1, node.name),
            )
        elif isinstance(node, nodes.Test) and node.name not in TESTS:
            yield TemplateProblem(f"unknown test {node.name[:40]!r} (tests: {', '.join(TESTS)})", line)


def compile_checked(source: str) -> CompiledTemplate:
    """Compile a template whose size and markers ``compile_template`` has checked."""
    sandbox_env = sandbox()
    try:
        tree = sandbox_env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"does not parse: {exc.message or 'syntax error'}", exc.lineno) from None
    for problem in _shape_problems(source, tree):
        raise problem
    try:
        template = sandbox_env.from_string(tree)
    except (TemplateAssertionError, TemplateSyntaxError) as exc:
        raise TemplateProblem(f"does not compile: {exc.message or 'error'}", exc.lineno) from None
    lines: dict[str, int] = {}
    keys: dict[tuple[str, str], None] = {}
    for node in _walk(tree):
        if isinstance(node, nodes.Name):
            lines.setdefault(node.name, node.lineno)
        elif isinstance(node, nodes.Getattr | nodes.Getitem) and isinstance(node.node, nodes.Name):
            key = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            if isinstance(key, str):
                keys[(node.node.name, key)] = None
    return CompiledTemplate(source, frozenset(lines), tuple(sorted(lines.items())), tuple(keys), template)


