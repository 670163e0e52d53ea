"""``CloudflareClient.verify_token()`` with email + Global API Key, against the emulator's ``GET /user``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from syncd.clients.cloudflare import CloudflareClient, GlobalKeyAuth
from syncd.clients.pacer import Pacer
from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.errors import CloudflareAuthError
from syncd.model import SecretValue
from tests.clients.conftest import FakeTime

EMAIL = "ops@example.com"
# Global keys are alphanumeric: these canaries must show up nowhere but in the request headers.
GOOD_KEY = "canaryGoodKey0c7e91d4"
BAD_KEY = "canaryBadKey5a2f08b6"


@pytest.fixture
def cf() -> Iterator[CloudflareEmulator]:
    emulator = CloudflareEmulator(port=0)
    emulator.add_global_key(EMAIL, GOOD_KEY)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def client_with_key(cf: CloudflareEmulator, key: list[str], fake_time: FakeTime) -> CloudflareClient:
    """A client whose key is read from ``key[0]`` on every request (as a key file would be)."""
    return CloudflareClient(
        cf.api_base,
        GlobalKeyAuth(EMAIL, lambda: SecretValue(key[0])),
        pacer=Pacer(1200, 300.0, clock=fake_time.clock, sleep=fake_time.sleep),
        timeout=5.0,
        retry_attempts=3,
    )


def requested_paths(cf: CloudflareEmulator) -> list[tuple[str, str, int]]:
    log = httpx.get(f"{cf.url}/__devstack/requests").json()["requests"]
    return [(entry["method"], entry["path"], entry["status"]) for entry in log]


def test_verify_with_a_known_global_key_asks_user_details_once(cf: CloudflareEmulator, fake_time: FakeTime) -> None:
    with client_with_key(cf, [GOOD_KEY], fake_time) as client:
        client.verify_token()

    assert requested_paths(cf) == [("GET", "/client/v4/user", 200)]


def test_verify_with_a_wrong_global_key_raises_auth_error_without_the_key(
    cf: CloudflareEmulator, fake_time: FakeTime
) -> None:
    with client_with_key(cf, [BAD_KEY], fake_time) as client, pytest.raises(CloudflareAuthError) as caught:
        client.verify_token()

    error = caught.value
    assert (error.status, error.code) == (403, 9103)
    assert "/user" in str(error)
    rendered = f"{error!s} {error!r} {error.args!r}"
    assert BAD_KEY not in rendered and GOOD_KEY not in rendered
    # An auth failure is not retried.
    assert requested_paths(cf) == [("GET", "/client/v4/user", 403)]


def test_verify_ignores_account_id_for_a_global_key(cf: CloudflareEmulator, fake_time: FakeTime) -> None:
    with client_with_key(cf, [GOOD_KEY], fake_time) as client:
        client.verify_token(cf.account_id)

    assert requested_paths(cf) == [("GET", "/client/v4/user", 200)]


def test_verify_reads_a_rotated_key_on_the_next_call(cf: CloudflareEmulator, fake_time: FakeTime) -> None:
    key = [GOOD_KEY]
    rotated = "canaryRotatedKey91be2c"
    with client_with_key(cf, key, fake_time) as client:
        client.verify_token()
        cf.add_global_key(EMAIL, rotated)  # the old key stops working
        with pytest.raises(CloudflareAuthError):
            client.verify_token()
        key[0] = rotated
        client.verify_token()

    assert [status for _, _, status in requested_paths(cf)] == [200, 403, 200]
