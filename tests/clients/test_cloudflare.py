from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient, GlobalKeyAuth
from syncd.clients.pacer import Pacer, RateBudgetExhausted
from syncd.errors import (
    CloudflareAuthError,
    CloudflareError,
    CloudflareNotDeployed,
    CloudflareNotFound,
    CloudflareRateLimited,
    CloudflareServerError,
    CloudflareTransportError,
    CloudflareValidationError,
)
from syncd.model import RemoteSecret, SecretBody, SecretValue, Target
from tests.clients.conftest import (
    CANARY_KEY,
    CANARY_TOKEN,
    CANARY_VALUE,
    FakeTime,
    assert_error_clean,
    assert_no_canary,
)

API = "https://cf.test/client/v4"
ACCOUNT = "0123456789abcdef0123456789abcdef"
TARGET = Target(ACCOUNT, "worker-a")
DISPATCH = Target(ACCOUNT, "tenant-1", dispatch_namespace="prod-ns")

Reply = httpx.Response | Exception


def ok(result: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"success": True, "errors": [], "messages": [], "result": result}
    return httpx.Response(status, json=body, headers=headers)


def fail(status: int, code: int | None, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    errors = [] if code is None else [{"code": code, "message": message}]
    body = {"success": False, "errors": errors, "messages": [], "result": None}
    return httpx.Response(status, json=body, headers=headers)


class Script:
    """A MockTransport handler answering from a queue; records the requests it saw."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def body(self, i: int = -1) -> Any:
        return json.loads(self.requests[i].content)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    def observe(self, service: str, operation: str, outcome: str, code: str, seconds: float) -> None:
        assert seconds >= 0
        self.calls.append((service, operation, outcome, code))


@pytest.fixture
def pacer(fake_time: FakeTime) -> Pacer:
    return Pacer(1200, 300.0, clock=fake_time.clock, sleep=fake_time.sleep)


def token(value: str = CANARY_TOKEN) -> Callable[[], SecretValue]:
    return lambda: SecretValue(value)


def client(
    script: Script,
    pacer: Pacer,
    *,
    auth: ApiTokenAuth | GlobalKeyAuth | None = None,
    observer: Recorder | None = None,
    attempts: int = 5,
    deadline: float = 60.0,
) -> CloudflareClient:
    return CloudflareClient(
        API,
        auth or ApiTokenAuth(token()),
        transport=httpx.MockTransport(script),
        pacer=pacer,
        observer=observer or Recorder(),
        retry_attempts=attempts,
        retry_deadline=deadline,
    )


def text_body(name: str, value: str = CANARY_VALUE) -> SecretBody:
    return SecretBody({"name": name, "type": "secret_text", "text": value})


# -- paths, bodies and headers --------------------------------------------------------------


def test_list_secrets_parses_names_and_types(pacer: Pacer) -> None:
    script = Script(ok([{"name": "API_KEY", "type": "secret_text"}, {"name": "SIGN", "type": "secret_key"}]))
    result = client(script, pacer).list_secrets(TARGET)
    assert list(result) == [RemoteSecret("API_KEY", "secret_text"), RemoteSecret("SIGN", "secret_key")]
    req = script.requests[0]
    assert req.method == "GET"
    assert req.url.path == f"/client/v4/accounts/{ACCOUNT}/workers/scripts/worker-a/secrets"


def test_bulk_update_sends_one_patch_with_values_and_nulls(pacer: Pacer) -> None:
    script = Script(ok({"A": {"name": "A", "type": "secret_text"}}))
    client(script, pacer).bulk_update(TARGET, {"A": text_body("A"), "OLD": None})
    assert len(script.requests) == 1
    req = script.requests[0]
    assert req.method == "PATCH"
    assert req.url.path.endswith("/workers/scripts/worker-a/secrets-bulk")
    assert req.headers["content-type"] == "application/json"
    assert script.body() == {"secrets": {"A": {"name": "A", "type": "secret_text", "text": CANARY_VALUE}, "OLD": None}}


def test_bulk_update_refuses_more_than_100_names_without_a_call(pacer: Pacer) -> None:
    script = Script(ok())
    changes: dict[str, SecretBody | None] = {f"N{i}": None for i in range(101)}
    with pytest.raises(ValueError, match="101"):
        client(script, pacer).bulk_update(TARGET, changes)
    assert script.requests == []


def test_bulk_update_with_no_changes_makes_no_call(pacer: Pacer) -> None:
    script = Script(ok())
    client(script, pacer).bulk_update(TARGET, {})
    assert script.requests == []


def test_bulk_update_refuses_a_body_under_another_name(pacer: Pacer) -> None:
    script = Script(ok())
    with pytest.raises(ValueError) as info:
        client(script, pacer).bulk_update(TARGET, {"A": text_body("B")})
    assert_error_clean(info.value)
    assert script.requests == []


def test_put_secret_sends_the_body(pacer: Pacer) -> None:
    script = Script(ok({"name": "A", "type": "secret_text"}))
    client(script, pacer).put_secret(TARGET, text_body("A"))
    req = script.requests[0]
    assert (req.method, req.url.path) == ("PUT", f"/client/v4/accounts/{ACCOUNT}/workers/scripts/worker-a/secrets")
    assert script.body()["text"] == CANARY_VALUE


def test_delete_secret_url_encodes_the_name(pacer: Pacer) -> None:
    script = Script(ok())
    client(script, pacer).delete_secret(TARGET, "odd@name/x")
    req = script.requests[0]
    assert req.method == "DELETE"
    assert req.url.raw_path.decode().endswith("/secrets/odd%40name%2Fx?url_encoded=true")


def test_delete_of_absent_binding_counts_as_deleted(pacer: Pacer) -> None:
    script = Script(fail(404, 10056, "Binding 'X' not found"))
    client(script, pacer).delete_secret(TARGET, "X")
    assert len(script.requests) == 1


def test_delete_on_missing_script_raises(pacer: Pacer) -> None:
    script = Script(fail(404, 10007, "This Worker does not exist on your account."))
    with pytest.raises(CloudflareNotFound) as info:
        client(script, pacer).delete_secret(TARGET, "X")
    assert info.value.code == 10007


@pytest.mark.parametrize(
    ("method", "call", "suffix"),
    [
        ("GET", lambda c: c.list_secrets(DISPATCH), "/secrets"),
        ("PATCH", lambda c: c.bulk_update(DISPATCH, {"A": None}), "/secrets-bulk"),
        ("PUT", lambda c: c.put_secret(DISPATCH, text_body("A")), "/secrets"),
        ("DELETE", lambda c: c.delete_secret(DISPATCH, "A"), "/secrets/A"),
    ],
)
def test_dispatch_namespace_scripts_use_the_dispatch_path(
    pacer: Pacer, method: str, call: Callable[[CloudflareClient], object], suffix: str
) -> None:
    script = Script(ok([]))
    call(client(script, pacer))
    req = script.requests[0]
    assert req.method == method
    assert req.url.path == (
        f"/client/v4/accounts/{ACCOUNT}/workers/dispatch/namespaces/prod-ns/scripts/tenant-1{suffix}"
    )


def test_api_token_auth_header_is_read_per_request(pacer: Pacer) -> None:
    current = {"token": "first-token"}
    script = Script(ok([]))
    cf = client(script, pacer, auth=ApiTokenAuth(lambda: SecretValue(current["token"])))
    cf.list_secrets(TARGET)
    current["token"] = "rotated-token"
    cf.list_secrets(TARGET)
    assert [r.headers["authorization"] for r in script.requests] == ["Bearer first-token", "Bearer rotated-token"]
    assert "x-auth-key" not in script.requests[0].headers


def test_global_key_auth_sends_email_and_key(pacer: Pacer) -> None:
    script = Script(ok([]))
    auth = GlobalKeyAuth("ops@example.com", lambda: SecretValue(CANARY_KEY))
    client(script, pacer, auth=auth).list_secrets(TARGET)
    headers = script.requests[0].headers
    assert headers["x-auth-email"] == "ops@example.com"
    assert headers["x-auth-key"] == CANARY_KEY
    assert "authorization" not in headers
    assert_no_canary(auth, client(script, pacer, auth=auth))


# -- verify and existence -----------------------------------------------------------------------


def test_verify_token_user_and_account_endpoints(pacer: Pacer) -> None:
    script = Script(ok({"id": "t", "status": "active"}))
    cf = client(script, pacer)
    cf.verify_token()
    cf.verify_token(ACCOUNT)
    assert [r.url.path for r in script.requests] == [
        "/client/v4/user/tokens/verify",
        f"/client/v4/accounts/{ACCOUNT}/tokens/verify",
    ]


def test_verify_token_refuses_an_inactive_token(pacer: Pacer) -> None:
    script = Script(ok({"id": "t", "status": "expired"}))
    with pytest.raises(CloudflareAuthError, match="expired"):
        client(script, pacer).verify_token()


def test_verify_with_global_key_reads_user(pacer: Pacer) -> None:
    script = Script(ok({"id": "u"}))
    client(script, pacer, auth=GlobalKeyAuth("a@b.c", lambda: SecretValue(CANARY_KEY))).verify_token(ACCOUNT)
    assert script.requests[0].url.path == "/client/v4/user"


def test_verify_token_invalid_maps_to_auth_error_without_retry(pacer: Pacer) -> None:
    script = Script(fail(401, 1000, "Invalid API Token"))
    with pytest.raises(CloudflareAuthError) as info:
        client(script, pacer).verify_token()
    assert info.value.code == 1000
    assert len(script.requests) == 1
    assert_error_clean(info.value)


def test_script_exists(pacer: Pacer) -> None:
    assert client(Script(ok([])), pacer).script_exists(TARGET) is True
    missing = Script(fail(404, 10007, "This Worker does not exist on your account."))
    assert client(missing, pacer).script_exists(TARGET) is False
    with pytest.raises(CloudflareAuthError):
        client(Script(fail(403, 10000, "Authentication error")), pacer).script_exists(TARGET)


# -- error mapping ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, 10007, CloudflareNotFound),
        (404, 10090, CloudflareNotFound),
        (400, 10214, CloudflareNotDeployed),
        (400, 10215, CloudflareNotDeployed),
        (403, 9106, CloudflareAuthError),
        (403, 9109, CloudflareAuthError),
        (401, 9109, CloudflareAuthError),
        (403, 10000, CloudflareAuthError),
        (401, 1000, CloudflareAuthError),
        (400, 6003, CloudflareAuthError),
        (403, None, CloudflareAuthError),
        (400, 10053, CloudflareValidationError),
        (400, 10054, CloudflareValidationError),
        (422, 12345, CloudflareValidationError),
        (409, None, CloudflareValidationError),
        (404, None, CloudflareNotFound),
    ],
)
def test_error_mapping_by_code_and_status(
    pacer: Pacer, status: int, code: int | None, expected: type[CloudflareError]
) -> None:
    script = Script(fail(status, code, "Cloudflare says no"))
    with pytest.raises(CloudflareError) as info:
        client(script, pacer).put_secret(TARGET, text_body("API_KEY"))
    err = info.value
    assert type(err) is expected
    assert (err.status, err.code) == (status, code)
    assert len(script.requests) == 1  # never retried
    assert "PUT" in str(err) and "worker-a" in str(err) and str(status) in str(err)
    if code is not None:
        assert err.api_message == "Cloudflare says no" and str(code) in str(err)
    assert_error_clean(err)


def test_success_false_with_200_is_an_error(pacer: Pacer) -> None:
    script = Script(fail(200, 10053, "Binding name 'A' already in use"))
    with pytest.raises(CloudflareValidationError, match="already in use"):
        client(script, pacer).put_secret(TARGET, text_body("A"))


def test_non_json_error_body_uses_the_reason_phrase(pacer: Pacer) -> None:
    script = Script(httpx.Response(400, text=f"<html>{CANARY_VALUE}</html>"))
    with pytest.raises(CloudflareValidationError) as info:
        client(script, pacer).put_secret(TARGET, text_body("A"))
    assert info.value.code is None and "Bad Request" in str(info.value)
    assert_error_clean(info.value)


def test_messages_never_carry_values_or_credentials(pacer: Pacer) -> None:
    # Every failure kind, with a body that holds the canary value and a token-auth header.
    for reply in (
        fail(400, 10053, "Binding name 'A' already in use"),
        fail(500, None, "boom"),
        httpx.ConnectError(f"connect failed {CANARY_VALUE}"),
        httpx.ReadTimeout("timed out"),
    ):
        script = Script(reply)
        with pytest.raises(CloudflareError) as info:
            client(script, pacer, attempts=1).bulk_update(TARGET, {"A": text_body("A")})
        assert_error_clean(info.value)
        err = info.value
        assert err.__cause__ is None and err.__context__ is None


# -- retries ------------------------------------------------------------------------------------


def test_429_with_retry_after_seconds_is_honoured_then_succeeds(pacer: Pacer, fake_time: FakeTime) -> None:
    rec = Recorder()
    script = Script(fail(429, 971, "Please wait", headers={"Retry-After": "17"}), ok([]))
    assert client(script, pacer, observer=rec).list_secrets(TARGET) == []
    assert len(script.requests) == 2
    assert fake_time.sleeps == [pytest.approx(17.0)]
    assert [c[2:] for c in rec.calls] == [("retry", "971"), ("ok", "200")]


def test_429_pause_applies_to_every_caller_of_the_pacer(pacer: Pacer, fake_time: FakeTime) -> None:
    first = Script(fail(429, 971, "Please wait", headers={"Retry-After": "30"}))
    with pytest.raises(CloudflareRateLimited):
        client(first, pacer, attempts=1).list_secrets(TARGET)
    other = Script(ok([]))
    client(other, pacer).list_secrets(TARGET)
    assert fake_time.sleeps == [pytest.approx(30.0)]


def test_429_with_retry_after_http_date(pacer: Pacer, fake_time: FakeTime) -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    script = Script(fail(429, None, "Too many requests", headers={"Retry-After": when}), ok([]))
    client(script, pacer, deadline=600).list_secrets(TARGET)
    assert len(fake_time.sleeps) == 1
    assert 118 <= fake_time.sleeps[0] <= 121


def test_429_past_the_deadline_is_raised_not_waited(pacer: Pacer, fake_time: FakeTime) -> None:
    script = Script(fail(429, 971, "Please wait", headers={"Retry-After": "300"}), ok([]))
    with pytest.raises(CloudflareRateLimited) as info:
        client(script, pacer, deadline=60).list_secrets(TARGET)
    assert not isinstance(info.value, RateBudgetExhausted)
    assert info.value.retry_after == 300
    assert len(script.requests) == 1
    assert fake_time.sleeps == []
    assert pacer.paused_for() == pytest.approx(300)  # others still wait


def test_exhausted_pacer_budget_fails_fast_without_a_request(fake_time: FakeTime) -> None:
    pacer = Pacer(2, 300.0, headroom=1.0, clock=fake_time.clock, sleep=fake_time.sleep)
    script = Script(ok([]))
    cf = client(script, pacer, deadline=60)
    cf.list_secrets(TARGET)
    cf.list_secrets(TARGET)
    with pytest.raises(RateBudgetExhausted):
        cf.list_secrets(TARGET)
    assert len(script.requests) == 2


def test_ratelimit_header_feeds_the_pacer(fake_time: FakeTime) -> None:
    pacer = Pacer(1200, 300.0, server_reserve=10, clock=fake_time.clock, sleep=fake_time.sleep)
    script = Script(*(ok([], headers={"Ratelimit": f'"default";r={r};t=45'}) for r in (12, 11, 10, 99)))
    cf = client(script, pacer)
    cf.list_secrets(TARGET)
    assert pacer.remaining() == 2
    cf.list_secrets(TARGET)
    cf.list_secrets(TARGET)
    assert fake_time.sleeps == []
    cf.list_secrets(TARGET)  # the server's budget minus our reserve is spent: wait for its reset
    assert fake_time.sleeps == [pytest.approx(45.0)]


def test_5xx_then_success_is_retried(pacer: Pacer) -> None:
    rec = Recorder()
    script = Script(fail(502, None, "Bad gateway"), fail(500, 10013, "internal"), ok([]))
    client(script, pacer, observer=rec).list_secrets(TARGET)
    assert len(script.requests) == 3
    assert [c[2:] for c in rec.calls] == [("retry", "502"), ("retry", "10013"), ("ok", "200")]


def test_connection_error_then_success_is_retried(pacer: Pacer) -> None:
    rec = Recorder()
    script = Script(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), ok(None))
    client(script, pacer, observer=rec).put_secret(TARGET, text_body("A"))
    assert len(script.requests) == 3
    assert [c[2:] for c in rec.calls] == [("retry", "connection"), ("retry", "timeout"), ("ok", "200")]


def test_retries_stop_after_the_configured_attempts(pacer: Pacer) -> None:
    rec = Recorder()
    script = Script(fail(503, None, "unavailable"))
    with pytest.raises(CloudflareServerError):
        client(script, pacer, observer=rec, attempts=3).list_secrets(TARGET)
    assert len(script.requests) == 3
    assert [c[2] for c in rec.calls] == ["retry", "retry", "error"]


def test_transport_errors_become_typed_after_retries(pacer: Pacer) -> None:
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(CloudflareTransportError, match="connection failed"):
        client(script, pacer, attempts=2).list_secrets(TARGET)
    assert len(script.requests) == 2


@pytest.mark.parametrize(("status", "code"), [(400, 10053), (403, 10000), (400, 10215), (404, 10007)])
def test_no_retry_for_validation_auth_not_deployed_not_found(pacer: Pacer, status: int, code: int) -> None:
    rec = Recorder()
    script = Script(fail(status, code, "no"), ok(None))
    with pytest.raises(CloudflareError):
        client(script, pacer, observer=rec).bulk_update(TARGET, {"A": text_body("A")})
    assert len(script.requests) == 1
    assert rec.calls == [("cloudflare", "bulk_update", "error", str(code))]


def test_every_attempt_takes_a_pacer_slot(fake_time: FakeTime) -> None:
    pacer = Pacer(100, 300.0, headroom=1.0, clock=fake_time.clock, sleep=fake_time.sleep)
    script = Script(fail(500, None, "x"), fail(500, None, "x"), ok([]))
    client(script, pacer).list_secrets(TARGET)
    assert pacer.remaining() == 97


def test_client_repr_hides_credentials(pacer: Pacer) -> None:
    cf = client(Script(ok()), pacer)
    assert "cf.test" in repr(cf)
    assert_no_canary(cf, ApiTokenAuth(token()))
