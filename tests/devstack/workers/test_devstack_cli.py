"""``syncd devstack`` with the Workers runtime: the JSON line's ``workers_url``, and without workerd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from syncd.devstack.stack import Devstack
from tests.devstack.test_cli import READY_DEADLINE_SECONDS, read_line_before
from tests.devstack.workers.conftest import require_workerd

pytestmark = pytest.mark.integration

BASE = [sys.executable, "-m", "syncd.devstack", "--vault-port", "0", "--cloudflare-port", "0", "--script", "web"]


def start(*extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*BASE, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_the_json_line_names_the_workers_address_where_each_script_answers_and_sigterm_stops_workerd(
    processes: list[subprocess.Popen[str]],
) -> None:
    require_workerd()
    processes.append(devstack := start())
    described = json.loads(read_line_before(devstack, time.monotonic() + READY_DEADLINE_SECONDS))

    report = httpx.get(described["workers_url"] + "/web/", timeout=10).json()
    status = httpx.get(described["workers_url"] + "/__devstack/workers", timeout=10).json()
    devstack.send_signal(signal.SIGTERM)

    assert report["script"] == "web" and report["bindings"] == {}
    assert devstack.wait(timeout=15) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(status["pid"], 0)


def test_without_workerd_the_devstack_says_why_and_serves_the_apis(processes: list[subprocess.Popen[str]]) -> None:
    processes.append(devstack := start(env={"SYNCD_WORKERD": "/nonexistent/workerd"}))
    described = json.loads(read_line_before(devstack, time.monotonic() + READY_DEADLINE_SECONDS))
    devstack.send_signal(signal.SIGTERM)
    _, stderr = devstack.communicate(timeout=15)

    assert "workers_url" not in described
    assert "workerd not found at /nonexistent/workerd" in stderr
    assert "without a Workers runtime" in stderr


def test_an_explicit_workerd_that_is_missing_is_a_usage_error(processes: list[subprocess.Popen[str]]) -> None:
    processes.append(devstack := start("--workerd", "/nonexistent/workerd"))
    assert devstack.wait(timeout=30) == 2


def test_no_workers_turns_the_runtime_off_and_a_required_runtime_without_workerd_is_refused(
    processes: list[subprocess.Popen[str]],
) -> None:
    processes.append(devstack := start("--no-workers"))
    described = json.loads(read_line_before(devstack, time.monotonic() + READY_DEADLINE_SECONDS))
    assert "workers_url" not in described
    with pytest.raises(ValueError, match="workerd not found"):
        Devstack(workers="on", workerd="/nonexistent/workerd")
