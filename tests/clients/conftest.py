"""Shared fixtures for the clients tests: fake time, stamina in test mode, canary values."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stamina

# Canary values: they must never show up in an exception's str/repr or in a log line.
CANARY_VALUE = "canary-value-5f0c1e9d"
CANARY_TOKEN = "canary-token-a81b77e2"
CANARY_KEY = "canary-globalkey-3d2f"
CANARY_SECRET_ID = "canary-secret-id-9e4b"
CANARY_JWT = "canary-jwt-eyJ0ZXN0"
CANARIES = (CANARY_VALUE, CANARY_TOKEN, CANARY_KEY, CANARY_SECRET_ID, CANARY_JWT)


def assert_no_canary(*texts: object) -> None:
    for text in texts:
        rendered = f"{text!s} {text!r}"
        for canary in CANARIES:
            assert canary not in rendered, f"canary leaked into {rendered!r}"


def assert_error_clean(exc: BaseException) -> None:
    """The exception, its args and anything chained to it carry no canary."""
    seen: BaseException | None = exc
    while seen is not None:
        assert_no_canary(seen, *seen.args)
        seen = seen.__cause__ or seen.__context__


class FakeTime:
    """A clock that only moves when slept on; records every sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture(autouse=True)
def _stamina_test_mode() -> Iterator[None]:
    # No real backoff sleeps; the configured attempt counts still apply (cap, not override).
    with stamina.set_testing(True, attempts=100, cap=True):
        yield
