"""The Cloudflare and Vault clients back off by ``syncd.retrying``'s rule, each with its own numbers,
and never take a wait after which no attempt would fit before the call's deadline."""

from __future__ import annotations

import httpx
import hvac.exceptions as hx
import pytest

from syncd.clients import cloudflare, vault_calls
from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
from syncd.clients.observe import NULL_OBSERVER
from syncd.clients.pacer import Pacer
from syncd.errors import CloudflareServerError, VaultUnavailable
from syncd.model import SecretValue, Target
from syncd.retrying import Backoff
from tests.clients.conftest import FakeTime

TARGET = Target("0123456789abcdef0123456789abcdef", "worker-a")
FIVE_SECONDS = Backoff(initial=5.0, maximum=5.0, jitter=0.0)


def test_the_clients_numbers_are_those_they_always_had() -> None:
    assert Backoff(initial=0.5, maximum=30.0, jitter=1.0) == cloudflare.RETRY_BACKOFF
    assert Backoff(initial=0.2, maximum=5.0, jitter=0.2) == vault_calls.RETRY_BACKOFF


@pytest.mark.parametrize(("deadline", "requests"), [(5.0, 1), (6.0, 3)])
def test_cloudflare_takes_a_backoff_only_when_an_attempt_fits_after_it(
    monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime, deadline: float, requests: int
) -> None:
    monkeypatch.setattr(cloudflare, "RETRY_BACKOFF", FIVE_SECONDS)
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(503, json={"success": False, "errors": [], "messages": [], "result": None})

    client = CloudflareClient(
        "https://cf.test/client/v4",
        ApiTokenAuth(lambda: SecretValue("t")),
        pacer=Pacer(clock=fake_time.clock, sleep=fake_time.sleep),
        transport=httpx.MockTransport(answer),
        retry_attempts=3,
        retry_deadline=deadline,
    )
    with pytest.raises(CloudflareServerError):
        client.list_secrets(TARGET)
    assert len(sent) == requests  # 5 s of backoff + 0.5 s for an attempt: fits in 6 s, not in 5 s


@pytest.mark.parametrize(("deadline", "calls"), [(5.0, 1), (6.0, 3)])
def test_vault_takes_a_backoff_only_when_an_attempt_fits_after_it(
    monkeypatch: pytest.MonkeyPatch, deadline: float, calls: int
) -> None:
    monkeypatch.setattr(vault_calls, "RETRY_BACKOFF", FIVE_SECONDS)
    made: list[int] = []

    def sealed() -> None:
        made.append(1)
        raise hx.VaultDown("Vault is sealed")

    with pytest.raises(VaultUnavailable):
        vault_calls.vault_call(
            sealed, operation="read", path="secret/x", observer=NULL_OBSERVER, attempts=3, deadline=deadline
        )
    assert len(made) == calls
