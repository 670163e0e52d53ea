"""Shared fixtures for the app tests: logging isolation and a captured JSON log stream."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from syncd.app.cli.main import main
from syncd.app.service.logs import configure_logging
from tests.app.service_conftest_helpers import Stack, running_stack, write_config

_TOUCHED_LOGGERS = ("httpx", "httpcore", "apscheduler", "apscheduler.executors", "apscheduler.executors.default")


@pytest.fixture(autouse=True)
def _isolate_logging() -> Iterator[None]:
    """``configure_logging`` changes process-global state: put it back after every test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in _TOUCHED_LOGGERS}
    structlog_config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)
    structlog.configure(**structlog_config)
    structlog.contextvars.clear_contextvars()


class LogCapture:
    """JSON log lines written by the real pipeline into a buffer."""

    def __init__(self, level: str = "debug") -> None:
        self.stream = io.StringIO()
        configure_logging(format="json", level=level, stream=self.stream)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == event]


@pytest.fixture
def json_logs() -> LogCapture:
    return LogCapture()


# -- the command line against the emulators (tests/app/test_cli*.py) -------------------------------


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Vault and Cloudflare emulators with canary secrets; credentials in the environment."""
    with running_stack(monkeypatch) as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, stack: Stack) -> Path:
    return write_config(tmp_path, stack)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``syncd ARGV`` in this process: the exit code, stdout and stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
