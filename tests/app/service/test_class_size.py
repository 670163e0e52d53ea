"""``app/service`` stays a set of small parts: no class over about 300 lines or 20 methods."""

from __future__ import annotations

import ast
from pathlib import Path

import syncd.app.service

MAX_LINES = 300
MAX_METHODS = 20


def oversized(source: str) -> list[str]:
    """The classes of a module over the limits, each with its lines and methods."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        methods = sum(isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) for item in node.body)
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        if lines > MAX_LINES or methods > MAX_METHODS:
            found.append(f"{node.name}: {lines} lines, {methods} methods")
    return found


def test_no_class_in_the_service_package_is_over_the_limits() -> None:
    package = Path(syncd.app.service.__file__).parent
    over = {path.name: found for path in sorted(package.glob("*.py")) if (found := oversized(path.read_text()))}
    assert over == {}


def test_the_check_sees_an_oversized_class() -> None:
    methods = "".join(f"    def m{i}(self) -> None:\n        pass\n" for i in range(MAX_METHODS + 1))
    assert oversized(f"class Big:\n{methods}") == [f"Big: {2 * (MAX_METHODS + 1) + 1} lines, {MAX_METHODS + 1} methods"]
    assert oversized("class Small:\n    pass\n") == []
