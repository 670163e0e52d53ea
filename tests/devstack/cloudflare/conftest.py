"""Fixtures: a fresh emulator per test, the official SDK and a raw httpx client pointed at it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import cloudflare
import httpx
import pytest

from syncd.devstack.cloudflare import CloudflareEmulator
from tests.devstack.cloudflare.helpers import SCRIPT


@pytest.fixture
def cf() -> Iterator[CloudflareEmulator]:
    emulator = CloudflareEmulator(scripts=[SCRIPT]).start()
    yield emulator
    # The stdlib server notices shutdown only at its next 0.5 s poll: stop in the background so
    # the suite does not wait half a second per test (each test has its own port anyway).
    threading.Thread(target=emulator.stop, name="stop-emulator", daemon=True).start()


@pytest.fixture
def sdk(cf: CloudflareEmulator) -> Iterator[cloudflare.Cloudflare]:
    with cloudflare.Cloudflare(api_token=cf.api_token, base_url=cf.api_base, max_retries=0) as client:
        yield client


@pytest.fixture
def http(cf: CloudflareEmulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {cf.api_token}"}
    with httpx.Client(base_url=cf.api_base, headers=headers, timeout=5.0) as client:
        yield client


@pytest.fixture
def admin(cf: CloudflareEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cf.url + "/__devstack", timeout=5.0) as client:
        yield client


@pytest.fixture
def store_id(cf: CloudflareEmulator) -> str:
    """The account's one Secrets Store (created through the admin API's state, not the real route)."""
    return cf.secrets_store.create_store(cf.account_id, {"name": "default_secrets_store"}).id
