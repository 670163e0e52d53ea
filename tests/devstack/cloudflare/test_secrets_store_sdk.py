"""The Secrets Store emulator driven by the official ``cloudflare`` SDK (5.9, pinned) over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import cloudflare
import httpx
import pytest

from syncd.devstack.cloudflare import CloudflareEmulator

pytestmark = pytest.mark.integration

CANARY = "canary-5d0c9e-store-value"


@pytest.fixture
def bodies() -> list[str]:
    """Every response body the SDK receives in a test."""
    return []


@pytest.fixture
def sdk(cf: CloudflareEmulator, bodies: list[str]) -> Iterator[cloudflare.Cloudflare]:
    def keep(response: httpx.Response) -> None:
        response.read()
        bodies.append(response.text)

    http_client = httpx.Client(event_hooks={"response": [keep]}, timeout=5.0)
    with cloudflare.Cloudflare(
        api_token=cf.api_token, base_url=cf.api_base, max_retries=0, http_client=http_client
    ) as client:
        yield client


def _error_of(excinfo: pytest.ExceptionInfo[cloudflare.APIStatusError]) -> tuple[int, int, str]:
    body = excinfo.value.body
    assert isinstance(body, dict)
    first = body["errors"][0]
    return excinfo.value.status_code, first["code"], first["message"]


# -- stores ---------------------------------------------------------------------------------------


def test_store_create_get_list_and_one_per_account(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare) -> None:
    stores = sdk.secrets_store.stores
    created = stores.create(account_id=cf.account_id, name="default_secrets_store")
    assert created is not None
    assert len(created.id) == 32
    assert created.account_id == cf.account_id

    with pytest.raises(cloudflare.BadRequestError) as refused:
        stores.create(account_id=cf.account_id, name="second")

    assert _error_of(refused) == (400, 1003, "maximum_stores_exceeded")
    fetched = stores.get(created.id, account_id=cf.account_id)
    assert fetched is not None
    assert (fetched.name, fetched.created) == ("default_secrets_store", created.created)
    assert [s.id for s in stores.list(account_id=cf.account_id)] == [created.id]


def test_store_with_secrets_is_deleted_only_with_force(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare, store_id: str
) -> None:
    sdk.secrets_store.stores.secrets.create(
        store_id, account_id=cf.account_id, body=[{"name": "KEPT", "value": "v", "scopes": ["workers"]}]
    )

    with pytest.raises(cloudflare.ConflictError) as refused:
        sdk.secrets_store.stores.delete(store_id, account_id=cf.account_id)

    assert _error_of(refused)[::2] == (409, "store_not_empty")
    assert [s.id for s in sdk.secrets_store.stores.list(account_id=cf.account_id)] == [store_id]
    assert sdk.secrets_store.stores.delete(store_id, account_id=cf.account_id, force=True) is None
    assert list(sdk.secrets_store.stores.list(account_id=cf.account_id)) == []
    assert sdk.secrets_store.quota.get(account_id=cf.account_id).secrets.usage == 0  # type: ignore[union-attr]


def test_unknown_store_is_not_found(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare) -> None:
    with pytest.raises(cloudflare.NotFoundError) as missing:
        sdk.secrets_store.stores.secrets.list("0" * 32, account_id=cf.account_id)

    assert _error_of(missing) == (404, 1001, "store_not_found")


# -- secrets --------------------------------------------------------------------------------------


def test_create_takes_an_array_and_answers_metadata_only(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare, store_id: str, bodies: list[str]
) -> None:
    page = sdk.secrets_store.stores.secrets.create(
        store_id,
        account_id=cf.account_id,
        body=[
            {"name": "DB_PASSWORD", "value": CANARY, "scopes": ["workers"], "comment": "syncd: db"},
            {"name": "API_KEY", "value": "other", "scopes": ["workers", "ai_gateway"]},
        ],
    )

    created = {secret.name: secret for secret in page}
    assert set(created) == {"DB_PASSWORD", "API_KEY"}
    db = created["DB_PASSWORD"]
    assert (db.status, db.comment, db.scopes, db.store_id) == ("pending", "syncd: db", ["workers"], store_id)
    assert db.created == db.modified
    assert "value" not in db.to_dict()
    assert cf.secrets_store_value(cf.account_id, store_id, "DB_PASSWORD") == CANARY
    assert all(CANARY not in body for body in bodies)


def test_get_list_edit_duplicate_and_delete_never_answer_a_value(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare, store_id: str, bodies: list[str]
) -> None:
    secrets = sdk.secrets_store.stores.secrets
    [first] = secrets.create(
        store_id, account_id=cf.account_id, body=[{"name": "TOKEN", "value": "old", "scopes": ["workers"]}]
    )
    cf.state.clock.advance(5)

    edited = secrets.edit(first.id, account_id=cf.account_id, store_id=store_id, value=CANARY, comment="rotated")
    copy = secrets.duplicate(first.id, account_id=cf.account_id, store_id=store_id, name="TOKEN_COPY", scopes=["dex"])
    fetched = secrets.get(first.id, account_id=cf.account_id, store_id=store_id)
    listed = [s.name for s in secrets.list(store_id, account_id=cf.account_id)]

    assert edited is not None and copy is not None and fetched is not None
    assert (edited.name, edited.comment, edited.created) == ("TOKEN", "rotated", first.created)
    assert edited.modified > first.modified
    assert (fetched.modified, fetched.comment) == (edited.modified, "rotated")
    assert sorted(listed) == ["TOKEN", "TOKEN_COPY"]
    assert cf.secrets_store_value(cf.account_id, store_id, "TOKEN_COPY") == CANARY
    secrets.delete(first.id, account_id=cf.account_id, store_id=store_id)
    with pytest.raises(cloudflare.NotFoundError) as gone:
        secrets.get(first.id, account_id=cf.account_id, store_id=store_id)
    assert _error_of(gone) == (404, 1001, "secret_not_found")
    assert cf.secrets_store_value(cf.account_id, store_id, "TOKEN") is None
    assert all(CANARY not in body for body in bodies)


def test_auto_pagination_reads_every_page_until_an_empty_one(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare, store_id: str
) -> None:
    body = [{"name": f"S{i:02d}", "value": "v", "scopes": ["workers"]} for i in range(23)]
    sdk.secrets_store.stores.secrets.create(store_id, account_id=cf.account_id, body=body)  # type: ignore[arg-type]
    with cf.state.lock:
        cf.state.requests.clear()

    names = [s.name for s in sdk.secrets_store.stores.secrets.list(store_id, account_id=cf.account_id, per_page=10)]

    assert sorted(names) == [f"S{i:02d}" for i in range(23)]
    assert len(names) == 23
    assert len(cf.state.requests) == 4  # pages 1-3, then the empty page 4 that ends the iteration


def test_search_matches_name_or_comment_and_scopes_filter(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare, store_id: str
) -> None:
    secrets = sdk.secrets_store.stores.secrets
    secrets.create(
        store_id,
        account_id=cf.account_id,
        body=[
            {"name": "DB_URL", "value": "v", "scopes": ["workers"], "comment": "owned by syncd"},
            {"name": "GATEWAY_KEY", "value": "v", "scopes": ["ai_gateway", "workers"]},
            {"name": "OTHER", "value": "v", "scopes": ["dex"], "comment": "hand made"},
        ],
    )

    def names(**query: object) -> list[str]:
        return sorted(s.name for s in secrets.list(store_id, account_id=cf.account_id, **query))  # type: ignore[arg-type]

    assert names(search="syncd") == ["DB_URL"]
    assert names(search="gateway") == ["GATEWAY_KEY"]
    assert names(scopes=["workers"]) == ["DB_URL", "GATEWAY_KEY"]
    assert names(scopes=["workers", "ai_gateway"]) == ["GATEWAY_KEY"]
    assert names(search="zzz") == []


def test_order_and_direction(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare, store_id: str) -> None:
    secrets = sdk.secrets_store.stores.secrets
    for name in ("B", "C", "A"):
        secrets.create(store_id, account_id=cf.account_id, body=[{"name": name, "value": "v", "scopes": ["workers"]}])
        cf.state.clock.advance(1)

    def names(**query: object) -> list[str]:
        return [s.name for s in secrets.list(store_id, account_id=cf.account_id, **query)]  # type: ignore[arg-type]

    assert names() == ["A", "C", "B"]  # created, newest first
    assert names(direction="asc") == ["B", "C", "A"]
    assert names(order="name", direction="asc") == ["A", "B", "C"]


def test_quota_counts_every_live_secret(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare, store_id: str) -> None:
    body = [{"name": f"Q{i}", "value": "v", "scopes": ["workers"]} for i in range(3)]
    created = list(sdk.secrets_store.stores.secrets.create(store_id, account_id=cf.account_id, body=body))  # type: ignore[arg-type]
    sdk.secrets_store.stores.secrets.delete(created[0].id, account_id=cf.account_id, store_id=store_id)

    quota = sdk.secrets_store.quota.get(account_id=cf.account_id)

    assert quota is not None
    assert (quota.secrets.quota, quota.secrets.usage) == (100, 2)


# -- refusals as the SDK's exception types ---------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"name": "has.dot", "value": "v", "scopes": ["workers"]}, "invalid_secret_name"),
        ({"name": "has space", "value": "v", "scopes": ["workers"]}, "invalid_secret_name"),
        ({"name": "", "value": "v", "scopes": ["workers"]}, "secret_name_empty"),
        ({"name": "BIG", "value": "x" * 65537, "scopes": ["workers"]}, "secret_value_too_long"),
        ({"name": "NO_SCOPE", "value": "v", "scopes": []}, "secret_scopes_empty"),
        ({"name": "BAD_SCOPE", "value": "v", "scopes": ["nope"]}, "secret_scope_invalid"),
    ],
)
def test_invalid_items_are_400_with_code_1001(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare, store_id: str, item: dict[str, object], message: str
) -> None:
    with pytest.raises(cloudflare.BadRequestError) as refused:
        sdk.secrets_store.stores.secrets.create(store_id, account_id=cf.account_id, body=[item])  # type: ignore[list-item]

    assert _error_of(refused) == (400, 1001, message)
    assert cf.secrets_store.quota(cf.account_id)["secrets"]["usage"] == 0


def test_value_of_exactly_65536_bytes_is_accepted(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare, store_id: str
) -> None:
    value = "\u00e9" * 32768  # two bytes each
    sdk.secrets_store.stores.secrets.create(
        store_id, account_id=cf.account_id, body=[{"name": "EDGE", "value": value, "scopes": ["workers"]}]
    )

    assert cf.secrets_store_value(cf.account_id, store_id, "EDGE") == value


def test_a_taken_name_is_a_conflict(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare, store_id: str) -> None:
    secrets = sdk.secrets_store.stores.secrets
    [first] = secrets.create(
        store_id, account_id=cf.account_id, body=[{"name": "SAME", "value": "v", "scopes": ["workers"]}]
    )

    with pytest.raises(cloudflare.ConflictError) as on_create:
        secrets.create(store_id, account_id=cf.account_id, body=[{"name": "SAME", "value": "w", "scopes": ["workers"]}])
    with pytest.raises(cloudflare.ConflictError) as on_duplicate:
        secrets.duplicate(first.id, account_id=cf.account_id, store_id=store_id, name="SAME", scopes=["workers"])

    assert _error_of(on_create) == _error_of(on_duplicate) == (409, 1003, "secret_name_already_exists")
    assert cf.secrets_store_value(cf.account_id, store_id, "SAME") == "v"


def test_read_token_cannot_write(cf: CloudflareEmulator, store_id: str) -> None:
    reader = cf.create_token("read")
    with cloudflare.Cloudflare(api_token=reader, base_url=cf.api_base, max_retries=0) as client:
        assert list(client.secrets_store.stores.secrets.list(store_id, account_id=cf.account_id)) == []
        with pytest.raises(cloudflare.PermissionDeniedError) as refused:
            client.secrets_store.stores.secrets.create(
                store_id, account_id=cf.account_id, body=[{"name": "X", "value": "v", "scopes": ["workers"]}]
            )

    assert _error_of(refused) == (403, 10000, "Authentication error")


def test_global_key_works_like_a_token(cf: CloudflareEmulator, store_id: str) -> None:
    cf.add_global_key("ops@example.com", "0123456789abcdef")
    with cloudflare.Cloudflare(
        api_email="ops@example.com", api_key="0123456789abcdef", base_url=cf.api_base, max_retries=0
    ) as client:
        client.secrets_store.stores.secrets.create(
            store_id, account_id=cf.account_id, body=[{"name": "BY_KEY", "value": "v", "scopes": ["workers"]}]
        )
        quota = client.secrets_store.quota.get(account_id=cf.account_id)

    assert quota is not None and quota.secrets.usage == 1
