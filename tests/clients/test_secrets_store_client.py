"""``SecretsStoreClient`` over an ``httpx.MockTransport``: bodies, paging, envelopes and errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from syncd.clients.pacer import Pacer
from syncd.clients.secrets_store import SecretsStoreClient
from syncd.errors import (
    CloudflareAuthError,
    CloudflareError,
    CloudflareRateLimited,
    CloudflareValidationError,
    SecretsStoreNotFound,
    ValueRejected,
)
from syncd.model import SecretValue
from syncd.model_store import NewStoreSecret, StoreQuota
from tests.clients.conftest import CANARY_VALUE, FakeTime, assert_error_clean, assert_no_canary
from tests.clients.test_cloudflare import ACCOUNT, Recorder, Script, client, fail, ok

STORE = "f" * 32
BASE = f"/client/v4/accounts/{ACCOUNT}/secrets_store"
SECRETS = f"{BASE}/stores/{STORE}/secrets"


@pytest.fixture
def pacer(fake_time: FakeTime) -> Pacer:
    return Pacer(1200, 300.0, clock=fake_time.clock, sleep=fake_time.sleep)


def row(name: str, *, status: str = "active", secret_id: str | None = None) -> dict[str, Any]:
    return {
        "id": secret_id or name.lower().ljust(32, "0"),
        "store_id": STORE,
        "name": name,
        "comment": "",
        "scopes": ["workers"],
        "status": status,
        "created": "2026-01-01T00:00:00.000000Z",
        "modified": "2026-01-02T00:00:00.000000Z",
    }


def store(script: Script, pacer: Pacer, *, per_page: int = 2, **kwargs: Any) -> SecretsStoreClient:
    return SecretsStoreClient(client(script, pacer, **kwargs), per_page=per_page)


def params(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


def test_list_secrets_pages_oldest_first_until_a_short_page(pacer: Pacer) -> None:
    script = Script(ok([row("A"), row("B")]), ok([row("C")]))

    secrets = store(script, pacer).list_secrets(ACCOUNT, STORE)

    assert [s.name for s in secrets] == ["A", "B", "C"]
    assert [params(r) for r in script.requests] == [
        {"order": "created", "direction": "asc", "page": "1", "per_page": "2"},
        {"order": "created", "direction": "asc", "page": "2", "per_page": "2"},
    ]
    assert script.requests[0].url.path == SECRETS


def test_list_secrets_stops_at_an_empty_page_and_keeps_each_id_once(pacer: Pacer) -> None:
    script = Script(ok([row("A"), row("B")]), ok([row("B"), row("C")]), ok([]))

    secrets = store(script, pacer).list_secrets(ACCOUNT, STORE)

    assert [s.name for s in secrets] == ["A", "B", "C"]
    assert len(script.requests) == 3


def paged(rows: list[dict[str, Any]], **info: Any) -> httpx.Response:
    body = {"success": True, "errors": [], "messages": [], "result": rows, "result_info": info}
    return httpx.Response(200, json=body)


@pytest.mark.parametrize(
    ("pages", "names"),
    [
        # The server caps per_page at 1 and says so: full pages of 1 up to total_count.
        ([paged([row("A")], per_page=1, total_count=2), paged([row("B")], per_page=1, total_count=2)], "AB"),
        # total_pages wins over everything else.
        ([paged([row("A")], total_pages=2), paged([row("B")], total_pages=2)], "AB"),
        # A full last page ends by total_count, without asking for an empty one.
        ([paged([row("A"), row("B")], per_page=2, total_count=2)], "AB"),
        # Nonsense in result_info (a bool, a string) is ignored: a short page ends.
        ([paged([row("A"), row("B")], per_page=True, total_count="x"), paged([row("C")])], "ABC"),
    ],
)
def test_list_secrets_follows_result_info(pacer: Pacer, pages: list[httpx.Response], names: str) -> None:
    script = Script(*pages)

    secrets = store(script, pacer).list_secrets(ACCOUNT, STORE)

    assert "".join(s.name for s in secrets) == names
    assert len(script.requests) == len(pages)  # every page served was asked for, and no more


def test_list_secrets_skips_deleted_rows_and_reads_metadata(pacer: Pacer) -> None:
    script = Script(ok([row("OLD", status="deleted"), {**row("NEW", status="pending"), "comment": "syncd: m"}]), ok([]))

    [secret] = store(script, pacer).list_secrets(ACCOUNT, STORE)

    assert (secret.name, secret.status, secret.comment, secret.scopes) == ("NEW", "pending", "syncd: m", ("workers",))
    assert (secret.created, secret.modified, secret.store_id) == (
        "2026-01-01T00:00:00.000000Z",
        "2026-01-02T00:00:00.000000Z",
        STORE,
    )


class Endless(Script):
    """Every page full, with new rows each time."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        page = len(self.requests)
        return ok([row(f"P{page}A"), row(f"P{page}B")])


def test_a_listing_that_never_ends_is_an_error(pacer: Pacer) -> None:
    script = Endless(ok([]))

    with pytest.raises(CloudflareError, match="more than 3 pages of 2"):
        SecretsStoreClient(client(script, pacer), per_page=2, max_pages=3).list_secrets(ACCOUNT, STORE)

    assert len(script.requests) == 3


def test_find_store_by_id_or_name(pacer: Pacer) -> None:
    stores = [{"id": STORE, "name": "default_secrets_store", "created": "c", "modified": "m"}]
    script = Script(ok(stores))
    client_ = store(script, pacer)

    assert client_.find_store(ACCOUNT, STORE).name == "default_secrets_store"
    assert client_.find_store(ACCOUNT, "default_secrets_store").id == STORE
    with pytest.raises(SecretsStoreNotFound, match="no Secrets Store with the name 'other'"):
        client_.find_store(ACCOUNT, "other")
    assert script.requests[0].url.path == f"{BASE}/stores"


def test_create_sends_one_array_and_reveals_values_only_there(pacer: Pacer) -> None:
    script = Script(ok([row("DB"), row("API")]))
    new = [
        NewStoreSecret("DB", SecretValue(CANARY_VALUE), comment="syncd: db"),
        NewStoreSecret("API", SecretValue("other"), scopes=("workers", "ai_gateway")),
    ]

    created = store(script, pacer).create_secrets(ACCOUNT, STORE, new)

    assert [s.name for s in created] == ["DB", "API"]
    assert (script.requests[0].method, script.requests[0].url.path) == ("POST", SECRETS)
    assert script.body() == [
        {"name": "DB", "value": CANARY_VALUE, "scopes": ["workers"], "comment": "syncd: db"},
        {"name": "API", "value": "other", "scopes": ["workers", "ai_gateway"], "comment": ""},
    ]
    assert_no_canary(new, new[0], created)


def test_create_nothing_sends_nothing_and_an_oversized_value_sends_nothing(pacer: Pacer) -> None:
    script = Script(ok([]))
    client_ = store(script, pacer)
    big = SecretValue(CANARY_VALUE + "x" * 65536)

    assert client_.create_secrets(ACCOUNT, STORE, []) == []
    with pytest.raises(ValueRejected) as rejected:
        client_.create_secrets(ACCOUNT, STORE, [NewStoreSecret("OK", SecretValue("v")), NewStoreSecret("BIG", big)])

    assert script.requests == []
    assert "BIG" in str(rejected.value) and "65536" in str(rejected.value)
    assert_error_clean(rejected.value)


def test_update_sends_only_the_fields_given(pacer: Pacer) -> None:
    script = Script(ok(row("DB")))
    client_ = store(script, pacer)

    client_.update_secret(ACCOUNT, STORE, "abc", value=SecretValue(CANARY_VALUE))
    client_.update_secret(ACCOUNT, STORE, "abc", comment="syncd: m", scopes=["workers"])

    assert [(r.method, r.url.path) for r in script.requests] == [("PATCH", f"{SECRETS}/abc")] * 2
    assert json.loads(script.requests[0].content) == {"value": CANARY_VALUE}
    assert json.loads(script.requests[1].content) == {"scopes": ["workers"], "comment": "syncd: m"}
    with pytest.raises(ValueError, match="give a value"):
        client_.update_secret(ACCOUNT, STORE, "abc")


def test_delete_of_a_secret_already_gone_counts_as_deleted(pacer: Pacer) -> None:
    script = Script(fail(404, 1001, "secret_not_found"), fail(404, 1001, "store_not_found"))
    client_ = store(script, pacer)

    client_.delete_secret(ACCOUNT, STORE, "abc")
    with pytest.raises(SecretsStoreNotFound) as missing:
        client_.delete_secret(ACCOUNT, STORE, "abc")

    assert (missing.value.status, missing.value.code, missing.value.api_message) == (404, 1001, "store_not_found")
    assert script.requests[0].method == "DELETE"


def test_quota(pacer: Pacer) -> None:
    script = Script(ok({"secrets": {"quota": 100, "usage": 97.0}}), ok({"secrets": {}}))
    client_ = store(script, pacer)

    quota = client_.quota(ACCOUNT)

    assert (quota, quota.room) == (StoreQuota(100, 97), 3)
    assert script.requests[0].url.path == f"{BASE}/quota"
    with pytest.raises(CloudflareError, match="no secrets quota"):
        client_.quota(ACCOUNT)


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        (fail(404, 1001, "store_not_found"), SecretsStoreNotFound, 1001),
        (fail(400, 1001, "store_not_found"), SecretsStoreNotFound, 1001),
        (httpx.Response(404, text="not found"), SecretsStoreNotFound, None),
        (fail(409, 1003, "secret_name_already_exists"), CloudflareValidationError, 1003),
        (fail(400, 1001, "secret_value_too_long"), CloudflareValidationError, 1001),
        (fail(403, 10000, "Authentication error"), CloudflareAuthError, 10000),
        (fail(429, 971, "Please wait", headers={"Retry-After": "300"}), CloudflareRateLimited, 971),
    ],
)
def test_failures_are_typed_errors_without_values(
    pacer: Pacer, reply: httpx.Response, error: type[CloudflareError], code: int | None
) -> None:
    script = Script(reply)

    with pytest.raises(CloudflareError) as raised:
        store(script, pacer, attempts=1).create_secrets(
            ACCOUNT, STORE, [NewStoreSecret("X", SecretValue(CANARY_VALUE))]
        )

    assert type(raised.value) is error
    assert raised.value.code == code
    assert f"POST {SECRETS.removeprefix('/client/v4')}" in str(raised.value)
    assert_error_clean(raised.value)


def test_results_of_the_wrong_shape_are_errors(pacer: Pacer) -> None:
    script = Script(ok({"not": "a list"}))
    client_ = store(script, pacer)

    with pytest.raises(CloudflareError, match="not a list"):
        client_.list_secrets(ACCOUNT, STORE)
    with pytest.raises(CloudflareError, match="not a list"):
        client_.create_secrets(ACCOUNT, STORE, [NewStoreSecret("X", SecretValue("v"))])
    script.replies = [ok([])]
    with pytest.raises(CloudflareError, match="not a secret"):
        client_.update_secret(ACCOUNT, STORE, "abc", comment="c")


def test_every_call_is_observed_under_its_own_operation(pacer: Pacer) -> None:
    recorder = Recorder()
    script = Script(ok([]), ok([row("A")]), ok(row("A")), ok(None), ok({"secrets": {"quota": 1, "usage": 0}}))
    client_ = store(script, pacer, observer=recorder)

    client_.list_secrets(ACCOUNT, STORE)
    client_.create_secrets(ACCOUNT, STORE, [NewStoreSecret("A", SecretValue("v"))])
    client_.update_secret(ACCOUNT, STORE, "a", comment="c")
    client_.delete_secret(ACCOUNT, STORE, "a")
    client_.quota(ACCOUNT)

    assert [call[1] for call in recorder.calls] == [
        "secrets_store_list_secrets",
        "secrets_store_create",
        "secrets_store_update",
        "secrets_store_delete",
        "secrets_store_quota",
    ]
    assert {call[2] for call in recorder.calls} == {"ok"}


def test_a_5xx_is_retried_through_the_shared_machinery(pacer: Pacer) -> None:
    script = Script(fail(503, None, "unavailable"), ok([row("A")]))

    created = store(script, pacer, attempts=3).create_secrets(ACCOUNT, STORE, [NewStoreSecret("A", SecretValue("v"))])

    assert [s.name for s in created] == ["A"]
    assert len(script.requests) == 2
