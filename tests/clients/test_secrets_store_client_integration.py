"""``SecretsStoreClient`` against the Cloudflare emulator over real HTTP on loopback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import httpx
import pytest

from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
from syncd.clients.pacer import Pacer, RateBudgetExhausted
from syncd.clients.secrets_store import SecretsStoreClient
from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.errors import CloudflareRateLimited, CloudflareValidationError, SecretsStoreNotFound
from syncd.model import SecretValue
from syncd.model_store import NewStoreSecret, StoreQuota
from tests.clients.conftest import CANARY_VALUE, assert_error_clean

pytestmark = pytest.mark.integration


@pytest.fixture
def cf() -> Iterator[CloudflareEmulator]:
    emulator = CloudflareEmulator(scripts=["edge"]).start()
    yield emulator
    threading.Thread(target=emulator.stop, daemon=True).start()


@pytest.fixture
def cloudflare(cf: CloudflareEmulator) -> Iterator[CloudflareClient]:
    client = CloudflareClient(
        cf.api_base, ApiTokenAuth(lambda: SecretValue(cf.api_token)), pacer=Pacer(1200, 300.0), retry_attempts=3
    )
    yield client
    client.close()


@pytest.fixture
def store_client(cloudflare: CloudflareClient) -> SecretsStoreClient:
    return SecretsStoreClient(cloudflare, per_page=3)


@pytest.fixture
def store_id(cf: CloudflareEmulator) -> str:
    return cf.secrets_store.create_store(cf.account_id, {"name": "default_secrets_store"}).id


def new(name: str, value: str = "v") -> NewStoreSecret:
    return NewStoreSecret(name, SecretValue(value), comment=f"syncd: mapping {name.lower()}")


def test_find_store_by_name_and_by_id(cf: CloudflareEmulator, store_client: SecretsStoreClient, store_id: str) -> None:
    by_name = store_client.find_store(cf.account_id, "default_secrets_store")
    by_id = store_client.find_store(cf.account_id, store_id)

    assert by_name == by_id
    assert (by_name.id, by_name.name) == (store_id, "default_secrets_store")
    with pytest.raises(SecretsStoreNotFound):
        store_client.find_store(cf.account_id, "nope")


def test_create_many_in_one_call_then_list_every_page(
    cf: CloudflareEmulator, store_client: SecretsStoreClient, store_id: str
) -> None:
    with cf.state.lock:
        cf.state.requests.clear()

    created = store_client.create_secrets(cf.account_id, store_id, [new(f"S{i}", CANARY_VALUE) for i in range(7)])
    listed = store_client.list_secrets(cf.account_id, store_id)

    methods = [entry["method"] for entry in cf.state.requests]
    assert methods == ["POST", "GET", "GET", "GET"]  # one create; pages of 3, 3 and a short one of 1
    assert [s.name for s in created] == [f"S{i}" for i in range(7)]
    assert sorted(s.name for s in listed) == [f"S{i}" for i in range(7)]
    assert {s.id: s.modified for s in listed} == {s.id: s.modified for s in created}
    assert listed[0].comment == "syncd: mapping s0" and listed[0].scopes == ("workers",)
    assert cf.secrets_store_value(cf.account_id, store_id, "S6") == CANARY_VALUE


def test_a_full_last_page_ends_the_listing_by_its_total_count(
    cf: CloudflareEmulator, store_client: SecretsStoreClient, store_id: str
) -> None:
    store_client.create_secrets(cf.account_id, store_id, [new(f"E{i}") for i in range(6)])
    with cf.state.lock:
        cf.state.requests.clear()

    assert len(store_client.list_secrets(cf.account_id, store_id)) == 6
    assert len(cf.state.requests) == 2  # 3 + 3 of total_count 6: no empty third page asked


def test_deleted_rows_are_not_listed(cf: CloudflareEmulator, store_client: SecretsStoreClient, store_id: str) -> None:
    cf.config = cf.config.updated({"secrets_store": {"deleted_retention_seconds": 600}})
    [gone, _kept] = store_client.create_secrets(cf.account_id, store_id, [new("GONE"), new("KEPT")])

    store_client.delete_secret(cf.account_id, store_id, gone.id)
    store_client.delete_secret(cf.account_id, store_id, gone.id)  # already gone: no error

    assert [s.name for s in store_client.list_secrets(cf.account_id, store_id)] == ["KEPT"]
    assert gone.id in cf.secrets_store.store(cf.account_id, store_id).secrets  # still listed, as "deleted"


def test_update_by_id_changes_value_and_modified(
    cf: CloudflareEmulator, store_client: SecretsStoreClient, store_id: str
) -> None:
    [created] = store_client.create_secrets(cf.account_id, store_id, [new("ROTATE", "old")])
    cf.state.clock.advance(2)

    updated = store_client.update_secret(cf.account_id, store_id, created.id, value=SecretValue(CANARY_VALUE))
    commented = store_client.update_secret(cf.account_id, store_id, created.id, comment="syncd: moved")

    assert (updated.name, updated.created) == ("ROTATE", created.created)
    assert updated.modified > created.modified
    assert commented.comment == "syncd: moved"
    assert cf.secrets_store_value(cf.account_id, store_id, "ROTATE") == CANARY_VALUE


def test_a_hand_edit_shows_as_a_changed_modified(
    cf: CloudflareEmulator, store_client: SecretsStoreClient, store_id: str
) -> None:
    [created] = store_client.create_secrets(cf.account_id, store_id, [new("SHARED")])
    cf.state.clock.advance(5)

    cf.secrets_store.update(cf.account_id, store_id, created.id, {"value": "by hand"}, actor="someone@example.com")
    [seen] = store_client.list_secrets(cf.account_id, store_id)

    assert seen.id == created.id
    assert seen.modified != created.modified


def test_quota_and_a_refused_batch_creates_nothing(
    cf: CloudflareEmulator, store_client: SecretsStoreClient, store_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    cf.config = cf.config.updated({"secrets_store": {"secret_quota": 2}})
    store_client.create_secrets(cf.account_id, store_id, [new("ONE")])
    caplog.set_level(logging.DEBUG)

    with pytest.raises(CloudflareValidationError) as refused:
        store_client.create_secrets(cf.account_id, store_id, [new("TWO", CANARY_VALUE), new("THREE", CANARY_VALUE)])
    with pytest.raises(CloudflareValidationError) as taken:
        store_client.create_secrets(cf.account_id, store_id, [new("ONE", CANARY_VALUE)])

    assert store_client.quota(cf.account_id) == StoreQuota(quota=2, usage=1)
    assert (refused.value.code, refused.value.api_message) == (1003, "maximum_secrets_exceeded")
    assert (taken.value.status, taken.value.api_message) == (409, "secret_name_already_exists")
    assert [s.name for s in store_client.list_secrets(cf.account_id, store_id)] == ["ONE"]
    assert_error_clean(refused.value)
    assert_error_clean(taken.value)
    assert CANARY_VALUE not in caplog.text


def test_unknown_store_and_secret_are_secrets_store_not_found(
    cf: CloudflareEmulator, store_client: SecretsStoreClient, store_id: str
) -> None:
    with pytest.raises(SecretsStoreNotFound) as no_store:
        store_client.list_secrets(cf.account_id, "0" * 32)
    with pytest.raises(SecretsStoreNotFound) as no_secret:
        store_client.update_secret(cf.account_id, store_id, "0" * 32, comment="c")

    assert no_store.value.api_message == "store_not_found"
    assert no_secret.value.api_message == "secret_not_found"


def test_store_calls_draw_on_the_one_rate_budget(
    cf: CloudflareEmulator, store_client: SecretsStoreClient, store_id: str
) -> None:
    cf.set_rate_limit(2, 300, 300)
    headers = {"Authorization": f"Bearer {cf.api_token}"}
    for _ in range(2):  # someone else (a deploy) spends the budget on script calls with the same token
        httpx.get(f"{cf.api_base}/accounts/{cf.account_id}/workers/scripts/edge/secrets", headers=headers)

    with pytest.raises(CloudflareRateLimited) as limited:
        store_client.create_secrets(cf.account_id, store_id, [new("LATE", CANARY_VALUE)])
    with pytest.raises(RateBudgetExhausted):  # the pacer now waits out Retry-After: nothing is sent
        store_client.quota(cf.account_id)

    assert type(limited.value) is CloudflareRateLimited  # the emulator's 429, not our pacer
    assert limited.value.retry_after == 300
    assert [e["status"] for e in cf.state.requests if "secrets_store" in e["path"]] == [429]
    assert cf.secrets_store_value(cf.account_id, store_id, "LATE") is None
    assert_error_clean(limited.value)


def test_an_injected_5xx_is_retried(cf: CloudflareEmulator, store_client: SecretsStoreClient, store_id: str) -> None:
    httpx.post(
        f"{cf.url}/__devstack/faults", json={"method": "POST", "path": "*/secrets_store/*", "status": 502}
    ).raise_for_status()

    created = store_client.create_secrets(cf.account_id, store_id, [new("AFTER_502")])

    assert [s.name for s in created] == ["AFTER_502"]
    assert [e["status"] for e in cf.state.requests if e["method"] == "POST"] == [502, 200]


@pytest.mark.parametrize("total_pages", [False, True])
def test_a_server_capping_the_page_size_below_the_ask_is_paged_to_the_end(
    cf: CloudflareEmulator, cloudflare: CloudflareClient, store_id: str, total_pages: bool
) -> None:
    """Whether the real API clamps ``per_page`` is unverified: a clamp it reports in ``result_info``
    must not end the listing after the first page (it did: a page of 7 was shorter than 50)."""
    cf.config = cf.config.updated({"secrets_store": {"max_per_page": 7, "total_pages": total_pages}})
    client = SecretsStoreClient(cloudflare, per_page=50)
    client.create_secrets(cf.account_id, store_id, [new(f"S{i:02d}") for i in range(15)])
    with cf.state.lock:
        cf.state.requests.clear()

    listed = client.list_secrets(cf.account_id, store_id)

    assert sorted(s.name for s in listed) == [f"S{i:02d}" for i in range(15)]
    assert [entry["method"] for entry in cf.state.requests] == ["GET"] * 3  # 7 + 7 + 1, no empty page asked
