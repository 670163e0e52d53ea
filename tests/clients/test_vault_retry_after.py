"""Vault's ``Retry-After`` (rate-limit quota 429s) is honoured by every Vault call, within its deadline.

Against the Vault emulator over real HTTP with hvac; the waits go to an injected clock and sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hvac
import pytest
import requests

from syncd.clients.observe import ERROR, OK, RETRY
from syncd.clients.vault import build_hvac_client
from syncd.clients.vault_calls import vault_call
from syncd.devstack.vault import VaultEmulator
from syncd.errors import VaultUnavailable
from tests.clients.conftest import FakeTime

PATH = "ra/limited"


class Observations:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def observe(self, service: str, operation: str, outcome: str, code: str, seconds: float) -> None:
        self.seen.append((outcome, code))


@pytest.fixture(scope="module")
def vault() -> Iterator[VaultEmulator]:
    emulator = VaultEmulator(port=0)
    emulator.start()
    try:
        hvac.Client(url=emulator.url, token=emulator.root_token).secrets.kv.v2.create_or_update_secret(
            PATH, {"k": "v"}, mount_point="secret"
        )
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def client(vault: VaultEmulator) -> Iterator[Any]:
    for route in ("faults", "requests"):
        requests.delete(f"{vault.url}/__devstack/{route}", timeout=5).raise_for_status()
    client = build_hvac_client(vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=2)
    client.token = vault.root_token
    yield client
    requests.delete(f"{vault.url}/__devstack/faults", timeout=5).raise_for_status()


def _fault(vault: VaultEmulator, status: int, retry_after: int | None, count: int = 1) -> None:
    fault: dict[str, Any] = {"method": "GET", "path": "/v1/secret/metadata/*", "status": status, "count": count}
    if retry_after is not None:
        fault["retry_after"] = retry_after
    requests.post(f"{vault.url}/__devstack/faults", json=fault, timeout=5).raise_for_status()


def _metadata_reads(vault: VaultEmulator) -> int:
    log = requests.get(f"{vault.url}/__devstack/requests", timeout=5).json()
    entries = log["requests"] if isinstance(log, dict) else log
    return sum(1 for e in entries if e["method"] == "GET" and e["path"].startswith("/v1/secret/metadata/"))


def _read_metadata(client: Any, time: FakeTime, observer: Observations, *, deadline: float) -> Any:
    return vault_call(
        lambda: client.secrets.kv.v2.read_secret_metadata(PATH, mount_point="secret"),
        operation="metadata_read",
        path=f"secret/{PATH}",
        observer=observer,
        attempts=5,
        deadline=deadline,
        clock=time.clock,
        sleep=time.sleep,
    )


def test_a_429_with_retry_after_waits_that_long_then_succeeds(vault: VaultEmulator, client: Any) -> None:
    _fault(vault, 429, retry_after=2)
    time, observer = FakeTime(), Observations()

    meta = _read_metadata(client, time, observer, deadline=30.0)

    assert meta["data"]["current_version"] == 1
    assert time.sleeps == [2.0]
    assert _metadata_reads(vault) == 2
    assert observer.seen == [(RETRY, "429"), (OK, "200")]


def test_a_retry_after_past_the_deadline_gives_up_at_once_without_waiting(vault: VaultEmulator, client: Any) -> None:
    _fault(vault, 429, retry_after=60)
    time, observer = FakeTime(), Observations()

    with pytest.raises(VaultUnavailable, match="Retry-After 60 s passes the call's deadline") as raised:
        _read_metadata(client, time, observer, deadline=10.0)

    assert raised.value.status == 429
    assert time.sleeps == []
    assert _metadata_reads(vault) == 1
    assert observer.seen == [(ERROR, "429")]


def test_a_503_with_retry_after_waits_too(vault: VaultEmulator, client: Any) -> None:
    _fault(vault, 503, retry_after=1)
    time, observer = FakeTime(), Observations()

    _read_metadata(client, time, observer, deadline=30.0)

    assert time.sleeps == [1.0]
    assert _metadata_reads(vault) == 2


def test_without_retry_after_the_backoff_is_stamina_s_not_a_header_wait(vault: VaultEmulator, client: Any) -> None:
    _fault(vault, 429, retry_after=None)
    time, observer = FakeTime(), Observations()

    _read_metadata(client, time, observer, deadline=30.0)

    assert time.sleeps == []  # stamina's backoff (zero in its test mode), no Retry-After wait
    assert _metadata_reads(vault) == 2
