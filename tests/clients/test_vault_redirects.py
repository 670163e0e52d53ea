"""Finding 3 of issue 21: a redirect at the Vault address must not take the token (or a login body)
to plain HTTP after HTTPS, nor to another origin unless it is a Vault standby's redirect; the event
WebSocket follows no cross-origin redirect. Real loopback servers, real TLS (tests/data/tls)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.app.notify.vault_events import VaultEventsSubscriber
from syncd.clients.observe import NULL_OBSERVER
from syncd.clients.vault import VaultReader
from syncd.clients.vault_auth import AppRoleLogin, VaultTokenManager
from syncd.clients.vault_connection import VaultConnection
from syncd.clients.vault_redirects import RedirectRefused, redirect_target
from syncd.errors import VaultError
from syncd.model import KvVersion, SecretValue, VaultSecretRef
from tests.hostile import TLS_CERT, Recorder, Redirector
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

TOKEN = "hvs.redirect-test-token-0123456789abcdef"
SECRET_ID = "secret-id-canary-5a8e1c"


# -- the policy ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "request_url", "location", "expected"),
    [
        (200, "https://v:8200/v1/a", "https://x/v1/a", None),  # not a redirect
        (308, "https://v:8200/v1/a", "https://v:8200/v1/b", None),  # not one the Vault client follows
        (303, "https://v:8200/v1/a", "https://v:8200/v1/b", None),
        (307, "https://v:8200/v1/a", None, None),
        (307, "https://v:8200/v1/a", "/v1/b", "https://v:8200/v1/b"),  # same origin, any path
        (301, "http://v:8200/v1/a?x=1", "http://w:8200/v1/a?x=1", "http://w:8200/v1/a?x=1"),  # standby
        (307, "https://v:8200/v1/a", "https://active:8200/v1/a", "https://active:8200/v1/a"),
        (302, "http://v:8200/v1/a", "https://v:8200/v1/a", "https://v:8200/v1/a"),  # an upgrade is fine
    ],
)
def test_followed_redirects(status: int, request_url: str, location: str | None, expected: str | None) -> None:
    assert redirect_target(status, request_url, location) == expected


@pytest.mark.parametrize(
    ("request_url", "location"),
    [
        ("https://v:8200/v1/a", "http://v:8200/v1/a"),  # https -> http, even on the same host
        ("https://v:8200/v1/a", "//evil/collect"),  # scheme-relative: https, another host and path
        ("https://v:8200/v1/a", "https://evil:8200/collect"),  # another origin, another path
        ("http://v:8200/v1/a?list=true", "http://evil:8200/v1/a"),  # another origin, query dropped
        ("https://v:8200/v1/a", "file:///etc/passwd"),
    ],
)
def test_refused_redirects(request_url: str, location: str) -> None:
    with pytest.raises(RedirectRefused):
        redirect_target(307, request_url, location)


# -- hvac's session and the lean read path against real servers -----------------------------------


@pytest.fixture
def plain_http() -> Iterator[Recorder]:
    recorder = Recorder().start()
    yield recorder
    recorder.stop()


def _https_redirector(to: str) -> Redirector:
    return Redirector(lambda path: to + path, tls=True).start()


def test_https_to_plain_http_gets_neither_the_token_nor_the_login_body(plain_http: Recorder) -> None:
    redirector = _https_redirector(plain_http.url)
    try:
        connection = VaultConnection.resolve(redirector.url, verify=str(TLS_CERT), timeout=5.0, pool_size=2)
        client = connection.hvac_client()
        login = AppRoleLogin(lambda: SecretValue("role"), lambda: SecretValue(SECRET_ID))
        tokens = VaultTokenManager(client, login, observer=NULL_OBSERVER)
        with pytest.raises(VaultError, match="refused"):
            tokens.ensure_token()
        client.token = TOKEN
        reader = VaultReader(client, http=connection.lean_transport(), retry_attempts=1)
        ref = VaultSecretRef("secret", "app")
        with pytest.raises(VaultError, match="refused"):
            reader.current_version(ref, KvVersion.V2)  # the lean path
        with pytest.raises(VaultError, match="refused"):
            reader.kv_version("secret")  # hvac's session
        assert len(redirector.received) == 3  # each request reached the HTTPS address once
        assert len(plain_http.received) == 0  # and nothing, no token, no body, went to plain HTTP
    finally:
        redirector.stop()


def test_a_standby_redirect_to_the_active_node_is_followed_once(plain_http: Recorder) -> None:
    standby = Redirector(lambda path: plain_http.url + path).start()  # both plain http: no downgrade
    try:
        connection = VaultConnection.resolve(standby.url, timeout=5.0, pool_size=2)
        client = connection.hvac_client()
        client.token = TOKEN
        transport = connection.lean_transport()
        reply = transport.get("/v1/secret/metadata/app", {"X-Vault-Token": TOKEN})
        assert reply.status == 200
        client.adapter.get("/v1/sys/internal/ui/mounts/secret")
        assert [r.path for r in plain_http.received] == ["/v1/secret/metadata/app", "/v1/sys/internal/ui/mounts/secret"]
        assert all(r.headers.get("X-Vault-Token") == TOKEN for r in plain_http.received)
    finally:
        standby.stop()


def test_a_second_redirect_is_not_followed(plain_http: Recorder) -> None:
    second = Redirector(lambda path: plain_http.url + path).start()
    first = Redirector(lambda path: second.url + path).start()
    try:
        transport = VaultConnection.resolve(first.url, timeout=5.0).lean_transport()
        assert transport.get("/v1/x", {}).status == 307  # returned as is
        assert (len(first.received), len(second.received), plain_http.received) == (1, 1, [])
    finally:
        first.stop()
        second.stop()


def test_the_event_websocket_follows_no_cross_origin_redirect(plain_http: Recorder) -> None:
    redirector = Redirector(lambda path: plain_http.url + path).start()
    subscriber = VaultEventsSubscriber(
        redirector.url, lambda: TOKEN, lambda path: None, event_types=["kv-v2/*"], backoff_initial=30.0
    )
    subscriber.start()
    try:
        assert wait_until(lambda: len(redirector.received) >= 1, 10.0)
        assert wait_until(lambda: not subscriber.connected and subscriber.connects == 0, 10.0)
        assert plain_http.received == []
    finally:
        subscriber.stop()
        redirector.stop()
