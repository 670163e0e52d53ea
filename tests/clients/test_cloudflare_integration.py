"""CloudflareClient against the Cloudflare emulator over real HTTP.

Pacing tests run the pacer on the emulator's clock, frozen except when advanced: the pacer's
``sleep`` advances that clock (through the admin API) instead of waiting, so rate-limit windows pass
without real time, and a slow (loaded) machine changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient, GlobalKeyAuth
from syncd.clients.pacer import Pacer
from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.devstack.httpkit import Clock
from syncd.errors import (
    CloudflareAuthError,
    CloudflareNotDeployed,
    CloudflareNotFound,
    CloudflareRateLimited,
    CloudflareValidationError,
)
from syncd.model import SecretBody, SecretValue, Target
from tests.clients.conftest import CANARY_VALUE, assert_error_clean


class EmulatorTime:
    """The emulator's clock, and a sleep that advances it (and records the waits)."""

    def __init__(self, cf: CloudflareEmulator) -> None:
        self.cf = cf
        self.sleeps: list[float] = []

    def now(self) -> float:
        return float(httpx.get(f"{self.cf.url}/__devstack/clock").json()["now"])

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        httpx.post(f"{self.cf.url}/__devstack/clock", json={"advance": seconds}).raise_for_status()


class FrozenClock(Clock):
    """Emulator time that moves only when a test advances it.

    With wall time flowing underneath, a loaded machine spreads a burst of requests over seconds, and
    the pacer's own window and the server's Ratelimit header (whole seconds) drift apart: the waits
    then split into extra small ones. Frozen, the pacing arithmetic is exact on any machine.
    """

    def __init__(self) -> None:
        super().__init__()
        self._frozen_at = time.time()

    def now(self) -> float:
        with self._lock:
            return self._frozen_at + self._offset


@pytest.fixture
def cf() -> Iterator[CloudflareEmulator]:
    emulator = CloudflareEmulator(port=0, clock=FrozenClock(), scripts=("a", "b"))
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def etime(cf: CloudflareEmulator) -> EmulatorTime:
    return EmulatorTime(cf)


def make_client(cf: CloudflareEmulator, etime: EmulatorTime, pacer: Pacer | None = None, **kw: Any) -> CloudflareClient:
    return CloudflareClient(
        cf.api_base,
        kw.pop("auth", None) or ApiTokenAuth(lambda: SecretValue(cf.api_token)),
        pacer=pacer or Pacer(1200, 300.0, clock=etime.now, sleep=etime.sleep),
        timeout=5.0,
        **kw,
    )


def admin_state(cf: CloudflareEmulator, script: str) -> dict[str, Any]:
    url = f"{cf.url}/__devstack/accounts/{cf.account_id}/workers/scripts/{script}"
    response = httpx.get(url)
    response.raise_for_status()
    return dict(response.json())


def text(name: str, value: str) -> SecretBody:
    return SecretBody({"name": name, "type": "secret_text", "text": value})


def fault(cf: CloudflareEmulator, **spec: Any) -> None:
    httpx.post(f"{cf.url}/__devstack/faults", json=spec).raise_for_status()


def test_bulk_put_list_delete_roundtrip(cf: CloudflareEmulator, etime: EmulatorTime) -> None:
    client = make_client(cf, etime)
    target = Target(cf.account_id, "a")
    versions_before = admin_state(cf, "a")["versions"]
    client.bulk_update(target, {"API_KEY": text("API_KEY", CANARY_VALUE), "OTHER": text("OTHER", "x")})
    state = admin_state(cf, "a")
    assert state["secrets"]["API_KEY"]["text"] == CANARY_VALUE
    assert state["versions"] == versions_before + 1  # one bulk call, one Worker version
    client.put_secret(target, text("THIRD", "y"))
    assert sorted(s.name for s in client.list_secrets(target)) == ["API_KEY", "OTHER", "THIRD"]
    client.bulk_update(target, {"OTHER": None, "API_KEY": text("API_KEY", "rotated")})
    client.delete_secret(target, "THIRD")
    client.delete_secret(target, "THIRD")  # already absent: 10056 counts as deleted
    state = admin_state(cf, "a")
    assert set(state["secrets"]) == {"API_KEY"}
    assert state["secrets"]["API_KEY"]["text"] == "rotated"
    assert admin_state(cf, "b")["secrets"] == {}


def test_missing_script(cf: CloudflareEmulator, etime: EmulatorTime) -> None:
    client = make_client(cf, etime)
    missing = Target(cf.account_id, "nope")
    assert client.script_exists(missing) is False
    assert client.script_exists(Target(cf.account_id, "a")) is True
    with pytest.raises(CloudflareNotFound) as info:
        client.bulk_update(missing, {"A": text("A", CANARY_VALUE)})
    assert info.value.code == 10007
    assert_error_clean(info.value)


def test_not_deployed_refusals(cf: CloudflareEmulator, etime: EmulatorTime) -> None:
    cf.set_undeployed("a")
    client = make_client(cf, etime)
    target = Target(cf.account_id, "a")
    with pytest.raises(CloudflareNotDeployed) as bulk:
        client.bulk_update(target, {"A": text("A", CANARY_VALUE)})
    with pytest.raises(CloudflareNotDeployed) as put:
        client.put_secret(target, text("A", CANARY_VALUE))
    assert (bulk.value.code, put.value.code) == (10214, 10215)
    assert_error_clean(bulk.value)
    assert_error_clean(put.value)
    assert admin_state(cf, "a")["secrets"] == {}


def test_binding_name_taken_by_a_plain_text_var(cf: CloudflareEmulator, etime: EmulatorTime) -> None:
    cf.create_script("with-var", plain_text={"TAKEN": "plain"})
    client = make_client(cf, etime)
    with pytest.raises(CloudflareValidationError) as info:
        client.put_secret(Target(cf.account_id, "with-var"), text("TAKEN", CANARY_VALUE))
    assert info.value.code == 10053
    assert_error_clean(info.value)


def test_dispatch_namespace_script(cf: CloudflareEmulator, etime: EmulatorTime) -> None:
    cf.create_namespace("tenants")
    cf.create_script("t1", namespace="tenants")
    client = make_client(cf, etime)
    target = Target(cf.account_id, "t1", dispatch_namespace="tenants")
    client.bulk_update(target, {"K": text("K", "v")})
    assert [s.name for s in client.list_secrets(target)] == ["K"]
    assert set(cf.secrets_of("t1", namespace="tenants")) == {"K"}


def test_verify_token_and_bad_credentials(cf: CloudflareEmulator, etime: EmulatorTime) -> None:
    make_client(cf, etime).verify_token()
    bad = make_client(cf, etime, auth=ApiTokenAuth(lambda: SecretValue(CANARY_VALUE)))
    with pytest.raises(CloudflareAuthError) as info:
        bad.list_secrets(Target(cf.account_id, "a"))
    assert_error_clean(info.value)


def test_global_key_auth(cf: CloudflareEmulator, etime: EmulatorTime) -> None:
    cf.add_global_key("ops@example.com", "globalkey1")
    client = make_client(cf, etime, auth=GlobalKeyAuth("ops@example.com", lambda: SecretValue("globalkey1")))
    # (verify_token uses GET /user for this credential kind, which the emulator does not serve.)
    client.put_secret(Target(cf.account_id, "a"), text("G", "v"))
    assert set(cf.secrets_of("a")) == {"G"}


def test_injected_429_retry_after_is_honoured(cf: CloudflareEmulator, etime: EmulatorTime) -> None:
    fault(cf, method="PATCH", path="*/secrets-bulk", status=429, retry_after=7, count=1)
    client = make_client(cf, etime)
    client.bulk_update(Target(cf.account_id, "a"), {"A": text("A", "v")})
    # The pause starts when the 429 arrives; the emulator clock runs on (real time) meanwhile.
    assert len(etime.sleeps) == 1 and 6.5 <= etime.sleeps[0] <= 7.0
    assert set(cf.secrets_of("a")) == {"A"}


def test_injected_5xx_and_dropped_connection_are_retried(cf: CloudflareEmulator, etime: EmulatorTime) -> None:
    fault(cf, method="PUT", path="*/secrets", status=502, count=1)
    fault(cf, method="PUT", path="*/secrets", drop=True, count=1)
    client = make_client(cf, etime)
    client.put_secret(Target(cf.account_id, "a"), text("A", "v"))
    assert set(cf.secrets_of("a")) == {"A"}


def test_pacer_keeps_under_the_server_limit(cf: CloudflareEmulator, etime: EmulatorTime) -> None:
    cf.set_rate_limit(limit=5, window=60.0, block=300.0)
    pacer = Pacer(5, 60.0, headroom=1.0, clock=etime.now, sleep=etime.sleep)
    client = make_client(cf, etime, pacer=pacer)
    for _ in range(12):
        client.list_secrets(Target(cf.account_id, "a"))
    # Two waits for the window, and no 429 (it would raise or pause 300 s). On a loaded machine the
    # server's Ratelimit reset (whole seconds, read in real time) can add a sub-second top-up wait.
    assert len([s for s in etime.sleeps if s >= 1.0]) == 2
    assert all(s <= 60.0 + 1e-6 for s in etime.sleeps)


def test_ratelimit_header_paces_a_client_with_a_larger_budget(cf: CloudflareEmulator, etime: EmulatorTime) -> None:
    # Someone else shares the account: the server's budget (5/min) is far below ours (1200/5min).
    cf.set_rate_limit(limit=5, window=60.0, block=300.0)
    pacer = Pacer(1200, 300.0, server_reserve=0, clock=etime.now, sleep=etime.sleep)
    client = make_client(cf, etime, pacer=pacer)
    for _ in range(8):
        client.list_secrets(Target(cf.account_id, "a"))
    assert len(etime.sleeps) == 1 and etime.sleeps[0] <= 60.0


def test_server_429_blocks_then_retry_after_is_waited(cf: CloudflareEmulator, etime: EmulatorTime) -> None:
    cf.set_rate_limit(limit=2, window=60.0, block=30.0)
    # Someone else (the dashboard) spends the account's budget behind our back.
    secrets_url = f"{cf.api_base}/accounts/{cf.account_id}/workers/scripts/a/secrets"
    headers = {"Authorization": f"Bearer {cf.api_token}"}
    statuses = [httpx.get(secrets_url, headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    with pytest.raises(CloudflareRateLimited) as info:
        make_client(cf, etime, retry_attempts=1).list_secrets(Target(cf.account_id, "a"))
    assert info.value.retry_after is not None and 0 < info.value.retry_after <= 30
    assert etime.sleeps == []
    client = make_client(cf, etime, retry_deadline=120.0)
    client.list_secrets(Target(cf.account_id, "a"))  # waits out Retry-After (and the window), then succeeds
    assert sum(etime.sleeps) >= info.value.retry_after - 1
