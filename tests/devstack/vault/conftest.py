"""Fixtures for the Vault emulator tests: a fresh emulator per test, hvac and httpx clients."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import hvac
import pytest

from syncd.devstack.httpkit import Clock
from syncd.devstack.vault import VaultEmulator


class FrozenClock(Clock):
    """Stands still unless advanced, so TTLs and timestamps are exact in assertions."""

    def __init__(self, start: float = 1_760_000_000.123456) -> None:
        super().__init__()
        self._start = start
        self._moved = 0.0

    def now(self) -> float:
        return self._start + self._moved

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._moved += seconds


_stopping: list[threading.Thread] = []


@pytest.fixture(scope="session", autouse=True)
def _join_stopped_emulators() -> Iterator[None]:
    yield
    for thread in _stopping:
        thread.join(timeout=5)


@pytest.fixture
def vault() -> Iterator[VaultEmulator]:
    """A fresh emulator per test; it is stopped in the background (shutdown polls every 0.5 s)."""
    emulator = VaultEmulator(clock=FrozenClock()).start()
    yield emulator
    stopper = threading.Thread(target=emulator.stop, daemon=True)
    stopper.start()
    _stopping.append(stopper)


@pytest.fixture
def root(vault: VaultEmulator) -> hvac.Client:
    return hvac.Client(url=vault.url, token=vault.root_token)


@pytest.fixture
def client_for(vault: VaultEmulator) -> Callable[[str | None], hvac.Client]:
    def make(token: str | None) -> hvac.Client:
        return hvac.Client(url=vault.url, token=token)

    return make


@pytest.fixture
def http(vault: VaultEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=vault.url, headers={"X-Vault-Token": vault.root_token}) as client:
        yield client


def make_jwt(claims: dict[str, Any]) -> str:
    """An unsigned-looking compact JWS with these claims (the emulator does not verify signatures)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'test'})}.{part(claims)}.c2lnbmF0dXJl"


def token_with_policy(root: hvac.Client, name: str, hcl: str, **kwargs: Any) -> str:
    root.sys.create_or_update_acl_policy(name=name, policy=hcl)
    created = root.auth.token.create(policies=[name], **kwargs)
    return str(created["auth"]["client_token"])
