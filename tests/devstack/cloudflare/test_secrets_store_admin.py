"""Secrets Store admin routes (values, hand edits) and where a value may and may not appear."""

from __future__ import annotations

import json

import httpx
import pytest

from syncd.devstack.cloudflare import CloudflareEmulator

pytestmark = pytest.mark.integration

CANARY = "canary-91b2-admin-store-value"


def _secrets(cf: CloudflareEmulator, store_id: str) -> str:
    return f"/accounts/{cf.account_id}/secrets_store/stores/{store_id}/secrets"


def test_admin_creates_a_store_under_the_same_limit(cf: CloudflareEmulator, admin: httpx.Client) -> None:
    created = admin.post(f"/accounts/{cf.account_id}/secrets_store/stores", json={})
    second = admin.post(f"/accounts/{cf.account_id}/secrets_store/stores", json={"name": "two"})

    assert created.status_code == 201
    assert created.json()["name"] == "default_secrets_store"
    assert second.status_code == 400
    assert [store.id for store in cf.secrets_store.stores(cf.account_id)] == [created.json()["id"]]


def test_admin_reads_values_the_api_never_shows(
    cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client, store_id: str
) -> None:
    [created] = http.post(_secrets(cf, store_id), json=[{"name": "DB", "value": CANARY, "scopes": ["workers"]}]).json()[
        "result"
    ]

    everything = admin.get(_secrets(cf, store_id)).json()["secrets"]
    one = admin.get(f"{_secrets(cf, store_id)}/{created['id']}").json()
    missing = admin.get(f"{_secrets(cf, store_id)}/{'0' * 32}")

    assert [(s["name"], s["value"]) for s in everything] == [("DB", CANARY)]
    assert (one["value"], one["modified_by"], one["modified"]) == (CANARY, "api", created["modified"])
    assert missing.status_code == 404


def test_hand_edit_changes_value_and_modified_as_another_actor(
    cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client, store_id: str
) -> None:
    [created] = http.post(
        _secrets(cf, store_id), json=[{"name": "SHARED", "value": "from-vault", "scopes": ["workers"]}]
    ).json()["result"]
    cf.state.clock.advance(10)

    edited = admin.post(f"{_secrets(cf, store_id)}/{created['id']}/hand-edit", json={"value": "typed-by-hand"})
    seen = http.get(f"{_secrets(cf, store_id)}/{created['id']}").json()["result"]
    bad = admin.post(f"{_secrets(cf, store_id)}/{created['id']}/hand-edit", json={"scopes": ["nope"]})

    assert edited.status_code == 200
    assert edited.json()["modified_by"] == "someone.else@example.com"
    assert "value" not in edited.json()
    assert seen["modified"] == edited.json()["modified"] > created["modified"]
    assert "value" not in seen
    assert cf.secrets_store_value(cf.account_id, store_id, "SHARED") == "typed-by-hand"
    assert bad.status_code == 400


def test_hand_edit_in_python_names_the_actor(cf: CloudflareEmulator, http: httpx.Client, store_id: str) -> None:
    [created] = http.post(_secrets(cf, store_id), json=[{"name": "K", "value": "a", "scopes": ["workers"]}]).json()[
        "result"
    ]

    cf.secrets_store.update(cf.account_id, store_id, created["id"], {"value": "b"}, actor="ci@example.com")

    assert cf.secrets_store.record(cf.account_id, store_id, created["id"])["modified_by"] == "ci@example.com"
    assert cf.secrets_store_value(cf.account_id, store_id, "K") == "b"


def test_secrets_store_value_is_none_for_what_does_not_exist(cf: CloudflareEmulator, store_id: str) -> None:
    assert cf.secrets_store_value(cf.account_id, store_id, "NOPE") is None
    assert cf.secrets_store_value(cf.account_id, "0" * 32, "NOPE") is None
    assert cf.secrets_store_value("f" * 32, store_id, "NOPE") is None


def test_a_value_never_reaches_an_answer_or_the_request_log(
    cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client, store_id: str
) -> None:
    answers: list[str] = []
    base = _secrets(cf, store_id)

    def send(method: str, path: str, body: object = None) -> httpx.Response:
        response = http.request(method, path, json=body)
        answers.append(response.text)
        return response

    [created] = send("POST", base, [{"name": "CANARY", "value": CANARY, "scopes": ["workers"]}]).json()["result"]
    one = f"{base}/{created['id']}"
    send("GET", base)
    send("GET", one)
    send("PATCH", one, {"value": CANARY + "-2"})
    send("POST", base, [{"name": "CANARY", "value": CANARY, "scopes": ["workers"]}])  # refused: name taken
    send("POST", base, [{"name": "BIG", "value": CANARY * 3000, "scopes": ["workers"]}])  # refused: too long
    send("POST", f"{one}/duplicate", {"name": "CANARY_COPY", "scopes": ["workers"]})
    send("DELETE", one)
    log = json.dumps(admin.get("/requests").json())

    assert len(answers) == 8
    assert all(CANARY not in answer for answer in answers)
    assert CANARY not in log
    assert cf.secrets_store_value(cf.account_id, store_id, "CANARY_COPY") == CANARY + "-2"
