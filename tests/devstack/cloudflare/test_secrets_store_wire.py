"""Secrets Store wire details a client sees only in raw answers: envelopes, paging, status, limits."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from syncd.devstack.cloudflare import CloudflareEmulator, EmulatorConfig
from syncd.devstack.cloudflare.secrets_store_config import SecretsStoreConfig

pytestmark = pytest.mark.integration


def _secrets(cf: CloudflareEmulator, store_id: str) -> str:
    return f"/accounts/{cf.account_id}/secrets_store/stores/{store_id}/secrets"


def _item(name: str, value: str = "v", scopes: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "value": value, "scopes": scopes or ["workers"]}


def _create(http: httpx.Client, cf: CloudflareEmulator, store_id: str, *names: str) -> list[dict[str, Any]]:
    response = http.post(_secrets(cf, store_id), json=[_item(name) for name in names])
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["result"]
    return result


def _set(cf: CloudflareEmulator, **changes: Any) -> None:
    cf.config = cf.config.updated({"secrets_store": changes})


def test_listing_envelope_has_total_count_but_no_total_pages_by_default(
    cf: CloudflareEmulator, http: httpx.Client, store_id: str
) -> None:
    _create(http, cf, store_id, "A", "B", "C")

    default = http.get(_secrets(cf, store_id), params={"per_page": 2}).json()
    _set(cf, total_pages=True)
    with_pages = http.get(_secrets(cf, store_id), params={"per_page": 2, "page": 2}).json()

    assert default["success"] is True and default["errors"] == [] and default["messages"] == []
    assert default["result_info"] == {"page": 1, "per_page": 2, "count": 2, "total_count": 3}
    assert with_pages["result_info"] == {"page": 2, "per_page": 2, "count": 1, "total_count": 3, "total_pages": 2}


def test_page_size_defaults_to_20_and_is_clamped_to_the_cap(
    cf: CloudflareEmulator, http: httpx.Client, store_id: str
) -> None:
    _create(http, cf, store_id, *[f"N{i:02d}" for i in range(30)])

    default = http.get(_secrets(cf, store_id)).json()
    _set(cf, max_per_page=7)
    capped = http.get(_secrets(cf, store_id), params={"per_page": 100}).json()
    past_end = http.get(_secrets(cf, store_id), params={"page": 9}).json()

    assert (default["result_info"]["per_page"], len(default["result"])) == (20, 20)
    assert (capped["result_info"]["per_page"], len(capped["result"])) == (7, 7)
    assert past_end["result"] == [] and past_end["result_info"]["count"] == 0


@pytest.mark.parametrize("query", [{"page": "x"}, {"per_page": "-1"}, {"order": "value"}, {"direction": "up"}])
def test_bad_listing_parameters_are_400(
    cf: CloudflareEmulator, http: httpx.Client, store_id: str, query: dict[str, str]
) -> None:
    response = http.get(_secrets(cf, store_id), params=query)

    assert response.status_code == 400
    assert response.json()["errors"] == [{"code": 1001, "message": "invalid_query_parameter"}]


def test_scopes_may_be_comma_separated_and_the_filter_mode_is_a_setting(
    cf: CloudflareEmulator, http: httpx.Client, store_id: str
) -> None:
    http.post(_secrets(cf, store_id), json=[_item("W", scopes=["workers"]), _item("D", scopes=["dex"])])

    def names() -> list[str]:
        result = http.get(_secrets(cf, store_id), params={"scopes": "workers,dex"}).json()["result"]
        return sorted(row["name"] for row in result)

    assert names() == []
    _set(cf, scopes_filter="any")
    assert names() == ["D", "W"]


def test_status_is_pending_then_active_and_a_new_value_makes_it_pending_again(
    cf: CloudflareEmulator, http: httpx.Client, store_id: str
) -> None:
    [created] = _create(http, cf, store_id, "ROTATING")
    one = f"{_secrets(cf, store_id)}/{created['id']}"

    assert created["status"] == "pending"
    cf.state.clock.advance(1.5)
    assert http.get(one).json()["result"]["status"] == "active"
    assert http.patch(one, json={"comment": "only metadata"}).json()["result"]["status"] == "active"
    assert http.patch(one, json={"value": "next"}).json()["result"]["status"] == "pending"
    cf.state.clock.advance(1.5)
    assert http.get(one).json()["result"]["status"] == "active"


def test_patch_changes_modified_never_created_and_the_name_is_immutable(
    cf: CloudflareEmulator, http: httpx.Client, store_id: str
) -> None:
    [created] = _create(http, cf, store_id, "FIXED")
    one = f"{_secrets(cf, store_id)}/{created['id']}"
    cf.state.clock.advance(3)

    patched = http.patch(one, json={"value": "v2", "scopes": ["workers", "dex"]}).json()["result"]
    renamed = http.patch(one, json={"name": "OTHER", "value": "v3"})
    empty = http.patch(one, json={})

    assert (patched["created"], patched["scopes"]) == (created["created"], ["workers", "dex"])
    assert patched["modified"] > created["modified"]
    assert renamed.status_code == empty.status_code == 400
    assert renamed.json()["errors"] == [{"code": 1001, "message": "invalid_json_body"}]
    assert cf.secrets_store_value(cf.account_id, store_id, "FIXED") == "v2"


@pytest.mark.parametrize("body", [b"[{not json", b'{"name": "A", "value": "v", "scopes": ["workers"]}', b"[]"])
def test_create_needs_a_non_empty_json_array(
    cf: CloudflareEmulator, http: httpx.Client, store_id: str, body: bytes
) -> None:
    response = http.post(_secrets(cf, store_id), content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "errors": [{"code": 1001, "message": "invalid_json_body"}],
        "messages": [],
        "result": None,
    }


def test_create_is_all_or_nothing(cf: CloudflareEmulator, http: httpx.Client, store_id: str) -> None:
    response = http.post(_secrets(cf, store_id), json=[_item("GOOD"), _item("BAD.NAME")])
    duplicate_in_batch = http.post(_secrets(cf, store_id), json=[_item("TWICE"), _item("TWICE")])

    assert response.status_code == 400
    assert duplicate_in_batch.status_code == 409
    assert http.get(_secrets(cf, store_id)).json()["result"] == []


def test_quota_refuses_the_whole_batch_and_reports_usage(
    cf: CloudflareEmulator, http: httpx.Client, store_id: str
) -> None:
    _set(cf, secret_quota=3)
    _create(http, cf, store_id, "ONE", "TWO")

    over = http.post(_secrets(cf, store_id), json=[_item("THREE"), _item("FOUR")])
    quota = http.get(f"/accounts/{cf.account_id}/secrets_store/quota").json()["result"]

    assert over.status_code == 400
    assert over.json()["errors"] == [{"code": 1003, "message": "maximum_secrets_exceeded"}]
    assert quota == {"secrets": {"quota": 3, "usage": 2}}
    assert len(http.get(_secrets(cf, store_id)).json()["result"]) == 2


def test_deleted_rows_are_listed_for_the_retention_then_vanish(
    cf: CloudflareEmulator, http: httpx.Client, store_id: str
) -> None:
    _set(cf, deleted_retention_seconds=60)
    [gone, kept] = _create(http, cf, store_id, "GONE", "KEPT")

    deleted = http.delete(f"{_secrets(cf, store_id)}/{gone['id']}").json()["result"]
    listed = {row["name"]: row["status"] for row in http.get(_secrets(cf, store_id)).json()["result"]}
    usage = http.get(f"/accounts/{cf.account_id}/secrets_store/quota").json()["result"]["secrets"]["usage"]
    recreated = http.post(_secrets(cf, store_id), json=[_item("GONE")])
    cf.state.clock.advance(61)
    later = sorted((row["name"], row["status"]) for row in http.get(_secrets(cf, store_id)).json()["result"])

    assert deleted["status"] == "deleted"
    assert listed == {"GONE": "deleted", "KEPT": "pending"}
    assert usage == 1
    assert recreated.status_code == 200
    assert later == [("GONE", "active"), ("KEPT", "active")]
    assert http.get(f"{_secrets(cf, store_id)}/{gone['id']}").status_code == 404
    assert kept["id"] in {row["id"] for row in http.get(_secrets(cf, store_id)).json()["result"]}


def test_not_found_status_is_a_setting(cf: CloudflareEmulator, http: httpx.Client, store_id: str) -> None:
    _set(cf, not_found_status=400)

    response = http.get(f"{_secrets(cf, store_id)}/{'f' * 32}")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"code": 1001, "message": "secret_not_found"}]


def test_store_calls_share_the_rate_limit_with_script_calls(
    cf: CloudflareEmulator, http: httpx.Client, store_id: str
) -> None:
    cf.set_rate_limit(3, 300, 300)

    first = http.get(_secrets(cf, store_id))
    http.get(f"/accounts/{cf.account_id}/workers/scripts/worker-a/secrets")
    http.get(f"/accounts/{cf.account_id}/secrets_store/quota")
    limited = http.post(_secrets(cf, store_id), json=[_item("LATE")])

    assert first.headers["Ratelimit"] == '"default";r=2;t=300'
    assert limited.status_code == 429
    assert limited.json()["errors"][0]["code"] == 971
    assert int(limited.headers["Retry-After"]) > 0
    assert cf.secrets_store_value(cf.account_id, store_id, "LATE") is None


def test_injected_faults_apply_to_store_paths(
    cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client, store_id: str
) -> None:
    admin.post("/faults", json={"method": "POST", "path": "*/secrets_store/*", "status": 503, "count": 1})

    failed = http.post(_secrets(cf, store_id), json=[_item("AFTER_FAULT")])
    retried = http.post(_secrets(cf, store_id), json=[_item("AFTER_FAULT")])

    assert failed.status_code == 503
    assert retried.status_code == 200


def test_write_latency_delays_store_writes(cf: CloudflareEmulator, http: httpx.Client, store_id: str) -> None:
    cf.set_write_latency("0.3")

    started = time.monotonic()
    _create(http, cf, store_id, "SLOW")
    write_seconds = time.monotonic() - started

    assert write_seconds >= 0.3


def test_other_accounts_are_refused(cf: CloudflareEmulator, http: httpx.Client, store_id: str) -> None:
    other = cf.create_account()
    scoped = cf.create_token("write", account_id=other)

    response = httpx.get(
        f"{cf.api_base}{_secrets(cf, store_id)}", headers={"Authorization": f"Bearer {scoped}"}, timeout=5.0
    )

    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == 10000


def test_config_is_validated_and_changed_over_the_admin_api(cf: CloudflareEmulator, admin: httpx.Client) -> None:
    changed = admin.post("/config", json={"secrets_store": {"secret_quota": 7}})
    unknown = admin.post("/config", json={"secrets_store": {"nope": 1}})

    assert changed.json()["secrets_store"]["secret_quota"] == 7
    assert cf.config.secrets_store.secret_quota == 7
    assert unknown.status_code == 400
    with pytest.raises(ValueError, match="scopes_filter"):
        SecretsStoreConfig(scopes_filter="some")
    with pytest.raises(ValueError, match="secrets_store"):
        EmulatorConfig(secrets_store="x")  # type: ignore[arg-type]
