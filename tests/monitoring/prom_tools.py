"""Finding and running Prometheus' own tools (``promtool``, ``prometheus``) for the monitoring tests.

The binaries come from Debian's ``prometheus`` package (``scripts/setup-prometheus.sh``) or from
``$PROMTOOL`` / ``$PROMETHEUS``. Where one is missing the tests that need it skip and say how to get
it, except under ``CI=true``: there a missing binary fails the test, so CI can never go green
without having run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "alerts" / "syncd-rules.yaml"
RULE_TESTS = DEPLOY / "alerts" / "syncd-rules.test.yaml"
PROMETHEUS_RULE = DEPLOY / "components" / "monitoring" / "prometheusrule.yaml"
DASHBOARD = DEPLOY / "grafana" / "syncd-dashboard.json"
DASHBOARD_COMPONENT = DEPLOY / "components" / "grafana"

PROMTOOL_TIMEOUT_SECONDS = 120.0  # a loaded 2-core machine; promtool itself takes well under a second


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def binary(name: str) -> str:
    """The path of ``name`` (``$NAME`` first, then PATH); skip, or fail under ``CI=true``, if absent."""
    found = os.environ.get(name.upper()) or shutil.which(name)
    if found and Path(found).is_file():
        return found
    message = (
        f"{name} not found (PATH or ${name.upper()}): install Debian's prometheus package"
        " (bash scripts/setup-prometheus.sh as root, or apt-get install prometheus)"
    )
    if in_ci():
        pytest.fail(f"{message}; CI=true, so the Prometheus tests may not skip", pytrace=False)
    pytest.skip(message)


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool; the caller asserts on the exit code with the output in the message."""
    return subprocess.run(
        [binary("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_SECONDS,
        check=False,
        cwd=cwd,
    )


def output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
