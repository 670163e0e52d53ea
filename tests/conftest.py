"""Marks every test that starts emulators, servers or processes as ``integration``.

``pytest -m "not integration"`` then runs the pure tests (fakes, fake time, no sockets) in seconds;
CI runs everything. A test counts as integration when its module, a fixture it uses, or a project
test helper either of them imports (followed through ``tests.*`` imports) imports what starts
something: the devstack emulators, ``subprocess``, ``socket``/``socketserver``/``http.server``, or
the service's HTTP side. Explicit ``pytest.mark.integration`` marks work too.
"""

from __future__ import annotations

import functools
import importlib.util
import re

import pytest

_STARTERS = re.compile(
    r"^\s*(?:from|import)\s+("
    r"syncd\.devstack|subprocess|socket|socketserver|http\.server|syncd\.app\.service\.(?:http_server|wiring|daemon)"
    r"|syncd\.app\.notify|syncd\.app\.cli\.(?:main|demo)|websockets"
    r")\b",
    re.MULTILINE,
)
_TEST_IMPORTS = re.compile(r"^\s*(?:from|import)\s+((?:tests|bench)(?:\.\w+)+)", re.MULTILINE)


@functools.cache
def _starts_things(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return False
    with open(spec.origin, encoding="utf-8") as source:
        text = source.read()
    if _STARTERS.search(text):
        return True
    return any(_starts_things(name) for name in _TEST_IMPORTS.findall(text) if name != module)


def _fixture_modules(item: pytest.Item) -> set[str]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return set()
    return {d.func.__module__ for defs in info.name2fixturedefs.values() for d in defs}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        modules = {item.module.__name__} if isinstance(item, pytest.Function) and item.module else set()
        if any(m.startswith("tests") and _starts_things(m) for m in modules | _fixture_modules(item)):
            item.add_marker(pytest.mark.integration)
