"""The flood benchmark at a tiny duration, so that it cannot rot: every flood runs against the real
listeners in a child process and every figure is printed. It asserts no memory figure."""

from __future__ import annotations

import json

import pytest

from bench.flood import main

pytestmark = pytest.mark.integration


def test_every_flood_runs_and_is_measured(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seconds", "0.3", "--writes", "3", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    floods = ("audit-1mib-lines", "audit-silent-slots", "http-header-bombs", "http-slowloris")
    assert all(results[name]["peak_mib"] > 0 for name in floods)
    assert results["idle_mib"] > 0
    assert results["vault-through-held-slots"]["arrived"] == 3
