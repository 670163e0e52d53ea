"""The Workers runtime tests need workerd (and some wrangler + Node 22) from ``scripts/setup-workers.sh``.

Where a tool is missing they skip and say how to get it, except under ``CI=true``: there a missing
tool fails the test, so CI can never go green without having run them (as ``tests/monitoring``
does for Prometheus).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.devstack.workers.runtime import WorkersRuntime
from syncd.devstack.workers.tools import find_node, find_workerd, find_wrangler, missing_workerd_reason
from tests.waiting import wait_until

REQUEST_TIMEOUT_SECONDS = 10.0


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _missing(message: str) -> None:
    if in_ci():
        pytest.fail(f"{message}; CI=true, so the Workers runtime tests may not skip", pytrace=False)
    pytest.skip(message)


def require_workerd() -> Path:
    found = find_workerd()
    if found is None:
        _missing(missing_workerd_reason())
    assert found is not None
    return found


def require_wrangler() -> tuple[Path, Path]:
    """(node, wrangler.js)."""
    node, wrangler = find_node(), find_wrangler()
    if node is None or wrangler is None:
        _missing("wrangler or Node 22 not found in .tools: install them with `bash scripts/setup-workers.sh`")
    assert node is not None and wrangler is not None
    return node, wrangler


@pytest.fixture
def workerd() -> Path:
    return require_workerd()


class Worker:
    """Requests to the Workers address, and waiting for what a Worker reports."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, script: str, path: str = "/", **params: str) -> httpx.Response:
        return httpx.get(f"{self.url}/{script}{path}", params=params, timeout=REQUEST_TIMEOUT_SECONDS)

    def report(self, script: str, **params: str) -> dict[str, Any]:
        response = self.get(script, **params)
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        return report

    def wait_for(
        self, script: str, condition: Callable[[dict[str, Any]], bool], timeout: float = 30.0, **params: str
    ) -> dict[str, Any]:
        """The first report that meets ``condition``; fails with the last one seen otherwise."""
        seen: list[dict[str, Any]] = []

        def check() -> bool:
            try:
                report = self.report(script, **params)
            except (httpx.TransportError, AssertionError):
                return False  # a reload in progress
            seen.append(report)
            return condition(report)

        assert wait_until(check, timeout=timeout, interval=0.05), f"last report: {seen[-1:]}"
        return seen[-1]


@pytest.fixture
def emulator() -> Iterator[CloudflareEmulator]:
    with CloudflareEmulator(scripts=["my-worker"]) as cf:
        yield cf


@pytest.fixture
def runtime(emulator: CloudflareEmulator, workerd: Path) -> Iterator[WorkersRuntime]:
    served = WorkersRuntime(emulator.store, workerd, default_account=emulator.account_id).start()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def worker(runtime: WorkersRuntime) -> Worker:
    return Worker(runtime.url)
