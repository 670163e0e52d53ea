"""Shared fixtures for the app tests: logging isolation and a captured JSON log stream."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from syncd.app.service.logs import configure_logging

_TOUCHED_LOGGERS = ("httpx", "httpcore", "apscheduler.executors", "apscheduler.executors.default")


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
