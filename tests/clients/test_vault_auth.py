from __future__ import annotations

from typing import Any

import pytest
import requests
from structlog.testing import capture_logs

from syncd.clients.vault_auth import (
    AppRoleLogin,
    JwtLogin,
    KubernetesLogin,
    TokenLogin,
    VaultTokenManager,
)
from syncd.errors import VaultAuthError, VaultUnavailable
from syncd.model import SecretValue
from tests.clients.conftest import (
    CANARY_JWT,
    CANARY_SECRET_ID,
    CANARY_TOKEN,
    FakeTime,
    assert_error_clean,
    assert_no_canary,
)
from tests.clients.fakevault import FakeVault, envelope, hvac_client

APPROLE_LOGIN = "auth/approle/login"
RENEW = "auth/token/renew-self"
LOOKUP = "auth/token/lookup-self"


def login_reply(token: str = CANARY_TOKEN, ttl: int = 3600, renewable: bool = True) -> tuple[int, Any]:
    auth = {"client_token": token, "accessor": "acc", "policies": ["syncd"], "lease_duration": ttl,
            "renewable": renewable, "metadata": {"role_name": "syncd"}}  # fmt: skip
    return 200, envelope(None, auth=auth)


def renew_reply(ttl: int, renewable: bool = True, token: str = CANARY_TOKEN) -> tuple[int, Any]:
    return login_reply(token, ttl, renewable)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    def observe(self, service: str, operation: str, outcome: str, code: str, seconds: float) -> None:
        self.calls.append((service, operation, outcome, code))


def approle() -> AppRoleLogin:
    return AppRoleLogin(lambda: SecretValue("role-id-1"), lambda: SecretValue(CANARY_SECRET_ID))


def manager(
    fake: FakeVault, fake_time: FakeTime, login: Any = None, rng: float = 0.5, **kw: Any
) -> tuple[VaultTokenManager, Any]:
    client = hvac_client(fake)
    m = VaultTokenManager(client, login or approle(), fake_time.clock, Recorder(), rng=lambda: rng, **kw)
    return m, client


def test_ensure_token_logs_in_and_installs_the_token(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("POST", APPROLE_LOGIN, login_reply(ttl=3600))
    m, client = manager(fake, fake_time)
    assert not m.is_valid() and m.expires_at is None
    m.ensure_token()
    body = fake.json_of(fake.calls("POST", APPROLE_LOGIN)[0])
    assert body == {"role_id": "role-id-1", "secret_id": CANARY_SECRET_ID}
    assert client.token == CANARY_TOKEN
    assert m.is_valid()
    assert m.expires_at == pytest.approx(fake_time.now + 3600)
    m.ensure_token()  # still valid: no second login
    assert len(fake.calls("POST", APPROLE_LOGIN)) == 1


def test_maintain_schedules_renewal_at_two_thirds_minus_grace(fake_time: FakeTime) -> None:
    for rng, grace in ((0.0, 0.10), (1.0, 0.20)):
        fake = FakeVault()
        fake.on("POST", APPROLE_LOGIN, login_reply(ttl=3000))
        m, _ = manager(fake, fake_time, rng=rng)
        delay = m.maintain()
        assert delay == pytest.approx(3000 * 2 / 3 * (1 - grace))


def test_maintain_renews_when_due_and_not_before(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("POST", APPROLE_LOGIN, login_reply(ttl=3000))
    fake.on("PUT", RENEW, renew_reply(ttl=3000))
    fake.on("POST", RENEW, renew_reply(ttl=3000))
    m, client = manager(fake, fake_time)
    delay = m.maintain()
    fake_time.advance(delay / 2)
    assert m.maintain() == pytest.approx(delay / 2)
    assert fake.calls("PUT", RENEW) + fake.calls("POST", RENEW) == []
    fake_time.advance(delay / 2)
    next_delay = m.maintain()
    renewals = fake.calls("PUT", RENEW) + fake.calls("POST", RENEW)
    assert len(renewals) == 1
    assert fake.json_of(renewals[0]) == {"increment": 3000}
    assert renewals[0].headers["X-Vault-Token"] == CANARY_TOKEN
    assert m.expires_at == pytest.approx(fake_time.now + 3000)
    assert next_delay == pytest.approx(delay)
    assert len(fake.calls("POST", APPROLE_LOGIN)) == 1
    assert client.token == CANARY_TOKEN


def _renew_route(fake: FakeVault, *replies: Any) -> None:
    fake.on("PUT", RENEW, *replies)
    fake.on("POST", RENEW, *replies)


def test_short_renewal_at_max_ttl_logs_in_again(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("POST", APPROLE_LOGIN, login_reply("tok-1", ttl=3000), login_reply("tok-2", ttl=3000))
    _renew_route(fake, renew_reply(ttl=500, token="tok-1"))
    m, client = manager(fake, fake_time)
    fake_time.advance(m.maintain())
    m.maintain()
    assert len(fake.calls("POST", APPROLE_LOGIN)) == 2
    assert client.token == "tok-2"
    assert m.expires_at == pytest.approx(fake_time.now + 3000)


def test_refused_renewal_logs_in_again(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("POST", APPROLE_LOGIN, login_reply("tok-1"), login_reply("tok-2"))
    _renew_route(fake, (403, {"errors": ["permission denied"]}))
    m, client = manager(fake, fake_time)
    fake_time.advance(m.maintain())
    assert m.maintain() > 0
    assert client.token == "tok-2"
    assert m.last_error is None


def test_not_renewable_token_logs_in_again_when_due(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("POST", APPROLE_LOGIN, login_reply("tok-1", renewable=False), login_reply("tok-2", renewable=False))
    m, client = manager(fake, fake_time)
    fake_time.advance(m.maintain())
    m.maintain()
    assert fake.calls("PUT", RENEW) + fake.calls("POST", RENEW) == []
    assert client.token == "tok-2"


def test_errors_back_off_exponentially_and_never_past_expiry(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("POST", APPROLE_LOGIN, (503, {"errors": ["Vault is sealed"]}))
    m, _ = manager(fake, fake_time, retry_attempts=1, min_backoff=2.0, max_backoff=60.0)
    delays = [m.maintain() for _ in range(7)]
    assert delays == pytest.approx([3, 5, 9, 17, 33, 60, 60])  # rng 0.5: half of min_backoff added, capped
    assert not m.is_valid()
    assert m.last_error == "VaultUnavailable"

    # With a valid token whose renewals fail, the retry comes well before expiry.
    fake2 = FakeVault()
    fake2.on("POST", APPROLE_LOGIN, login_reply(ttl=90))
    _renew_route(fake2, (503, {"errors": ["sealed"]}))
    m2, _ = manager(fake2, fake_time, retry_attempts=1, min_backoff=50.0)
    fake_time.advance(m2.maintain())
    left = m2.expires_at - fake_time.now  # type: ignore[operator]
    assert m2.maintain() <= left / 3 + 1e-9
    assert m2.is_valid()


def test_recovers_after_failures_and_resets_backoff(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on(
        "POST",
        APPROLE_LOGIN,
        requests.exceptions.ConnectionError("down"),
        requests.exceptions.ConnectionError("down"),
        login_reply(ttl=600),
    )
    m, _ = manager(fake, fake_time, retry_attempts=1)
    m.maintain()
    m.maintain()
    delay = m.maintain()
    assert m.is_valid()
    assert delay == pytest.approx(600 * 2 / 3 * 0.85)
    assert m.last_error is None


def test_bad_credentials_raise_auth_error_without_secrets(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("POST", APPROLE_LOGIN, (400, {"errors": ["invalid role or secret ID"]}))
    m, _ = manager(fake, fake_time)
    with capture_logs() as logs, pytest.raises(VaultAuthError, match="invalid role or secret ID") as info:
        m.ensure_token()
    assert_error_clean(info.value)
    assert len(fake.requests) == 1  # not retried
    assert m.maintain() > 0  # maintain logs and backs off instead of raising
    assert_no_canary(logs, m)


def test_credentials_are_read_on_every_login(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("POST", APPROLE_LOGIN, login_reply(renewable=False))
    current = {"secret_id": "first"}
    login = AppRoleLogin(lambda: SecretValue("r"), lambda: SecretValue(current["secret_id"]))
    m, _ = manager(fake, fake_time, login=login)
    fake_time.advance(m.maintain())
    current["secret_id"] = "second"
    m.maintain()
    sent = [fake.json_of(r)["secret_id"] for r in fake.calls("POST", APPROLE_LOGIN)]
    assert sent == ["first", "second"]


def test_token_expiry_makes_it_invalid(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("POST", APPROLE_LOGIN, login_reply(ttl=100))
    m, _ = manager(fake, fake_time)
    m.ensure_token()
    fake_time.advance(100)
    assert not m.is_valid()


def test_token_login_looks_itself_up(fake_time: FakeTime) -> None:
    fake = FakeVault()
    lookup = envelope({"id": CANARY_TOKEN, "ttl": 1200, "creation_ttl": 3600, "renewable": True, "policies": []})
    fake.on("GET", LOOKUP, (200, lookup))
    m, client = manager(fake, fake_time, login=TokenLogin(lambda: SecretValue(CANARY_TOKEN)))
    m.ensure_token()
    assert fake.calls("GET", LOOKUP)[0].headers["X-Vault-Token"] == CANARY_TOKEN
    assert client.token == CANARY_TOKEN
    assert m.expires_at == pytest.approx(fake_time.now + 1200)
    _renew_route(fake, renew_reply(ttl=3600))
    fake_time.advance(m.maintain())
    m.maintain()
    renewals = fake.calls("PUT", RENEW) + fake.calls("POST", RENEW)
    assert fake.json_of(renewals[0]) == {"increment": 3600}


def test_non_expiring_token_needs_no_renewal(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("GET", LOOKUP, (200, envelope({"ttl": 0, "creation_ttl": 0, "renewable": False})))
    m, _ = manager(fake, fake_time, login=TokenLogin(lambda: SecretValue(CANARY_TOKEN)), idle_interval=300)
    assert m.maintain() == 300
    fake_time.advance(10**6)
    assert m.is_valid() and m.expires_at is None
    assert m.maintain() == 300
    assert len(fake.requests) == 1


def test_invalid_given_token_is_an_auth_error(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("GET", LOOKUP, (403, {"errors": ["permission denied"]}))
    m, _ = manager(fake, fake_time, login=TokenLogin(lambda: SecretValue(CANARY_TOKEN)))
    with pytest.raises(VaultAuthError) as info:
        m.ensure_token()
    assert_error_clean(info.value)


@pytest.mark.parametrize(
    ("login", "path"),
    [
        (KubernetesLogin("syncd", lambda: SecretValue(CANARY_JWT)), "auth/kubernetes/login"),
        (JwtLogin("syncd", lambda: SecretValue(CANARY_JWT)), "auth/jwt/login"),
        (KubernetesLogin("syncd", lambda: SecretValue(CANARY_JWT), mount_point="k8s-prod"), "auth/k8s-prod/login"),
    ],
)
def test_kubernetes_and_jwt_logins(fake_time: FakeTime, login: Any, path: str) -> None:
    fake = FakeVault()
    fake.on("POST", path, login_reply(ttl=900))
    m, client = manager(fake, fake_time, login=login)
    with capture_logs() as logs:
        m.ensure_token()
    assert fake.json_of(fake.calls("POST", path)[0]) == {"role": "syncd", "jwt": CANARY_JWT}
    assert client.token == CANARY_TOKEN
    assert_no_canary(logs, login, m)
    assert any(e["event"] == "vault_login" for e in logs)


def test_login_observed_and_unavailable_retried(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("POST", APPROLE_LOGIN, (503, {"errors": ["sealed"]}), login_reply())
    m, _ = manager(fake, fake_time)
    m.ensure_token()
    assert m._observer.calls == [("vault", "login", "retry", "503"), ("vault", "login", "ok", "200")]  # type: ignore[attr-defined]


def test_unavailable_login_surfaces_from_ensure_token(fake_time: FakeTime) -> None:
    fake = FakeVault()
    fake.on("POST", APPROLE_LOGIN, (503, {"errors": ["sealed"]}))
    m, _ = manager(fake, fake_time, retry_attempts=2)
    with pytest.raises(VaultUnavailable):
        m.ensure_token()
    assert len(fake.requests) == 2
