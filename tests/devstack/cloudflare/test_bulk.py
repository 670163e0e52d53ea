"""``PATCH .../secrets-bulk``: merge patch, one version, at most 100 names, all or nothing."""

from __future__ import annotations

import httpx

from syncd.devstack.cloudflare import CloudflareEmulator
from tests.devstack.cloudflare.helpers import SCRIPT, script_path, text_secret


def bulk(http: httpx.Client, cf: CloudflareEmulator, body: object) -> httpx.Response:
    return http.patch(
        script_path(cf) + "/secrets-bulk",
        json=body,
        headers={"Content-Type": "application/merge-patch+json"},
    )


def test_hundred_names_in_one_call_make_one_version(cf: CloudflareEmulator, http: httpx.Client) -> None:
    secrets = {f"S_{i}": text_secret(f"S_{i}", str(i)) for i in range(100)}

    response = bulk(http, cf, {"secrets": secrets})

    assert response.status_code == 200
    assert len(cf.secrets_of(SCRIPT)) == 100
    assert cf.versions_of(SCRIPT) == 2


def test_more_than_hundred_names_are_refused(cf: CloudflareEmulator, http: httpx.Client) -> None:
    secrets = {f"S_{i}": text_secret(f"S_{i}", str(i)) for i in range(101)}

    response = bulk(http, cf, {"secrets": secrets})

    assert response.status_code == 400
    assert cf.secrets_of(SCRIPT) == {}
    assert cf.versions_of(SCRIPT) == 1


def test_one_invalid_entry_rejects_the_whole_call(cf: CloudflareEmulator, http: httpx.Client) -> None:
    http.put(script_path(cf) + "/secrets", json=text_secret("KEEP", "old")).raise_for_status()

    response = bulk(
        http,
        cf,
        {"secrets": {"KEEP": None, "GOOD": text_secret("GOOD", "g"), "BAD": {"name": "BAD", "type": "secret_text"}}},
    )

    assert response.status_code == 400
    assert cf.secrets_of(SCRIPT) == {"KEEP": {"name": "KEEP", "type": "secret_text", "text": "old"}}
    assert cf.versions_of(SCRIPT) == 2


def test_plain_text_collision_rejects_the_whole_call(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.create_script("vars", plain_text={"REGION": "eu"})

    response = http.patch(
        script_path(cf, "vars") + "/secrets-bulk",
        json={"secrets": {"OK": text_secret("OK", "1"), "REGION": text_secret("REGION", "2")}},
    )

    assert response.json()["errors"][0]["code"] == 10053
    assert cf.secrets_of("vars") == {}


def test_name_in_body_must_match_its_key(cf: CloudflareEmulator, http: httpx.Client) -> None:
    response = bulk(http, cf, {"secrets": {"A": text_secret("B", "x")}})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 10021


def test_null_for_an_absent_name_is_a_no_op(cf: CloudflareEmulator, http: httpx.Client) -> None:
    response = bulk(http, cf, {"secrets": {"NEVER_THERE": None, "A": text_secret("A", "a")}})

    assert response.status_code == 200
    assert response.json()["result"] == {"A": {"name": "A", "type": "secret_text"}}


def test_deletes_free_room_under_the_variable_limit(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.config = cf.config.updated({"max_variables": 2})
    bulk(http, cf, {"secrets": {"A": text_secret("A", "a"), "B": text_secret("B", "b")}}).raise_for_status()

    swap = bulk(http, cf, {"secrets": {"A": None, "C": text_secret("C", "c")}})
    grow = bulk(http, cf, {"secrets": {"D": text_secret("D", "d")}})

    assert swap.status_code == 200
    assert grow.status_code == 400
    assert set(cf.secrets_of(SCRIPT)) == {"B", "C"}


def test_body_without_secrets_object_is_refused(cf: CloudflareEmulator, http: httpx.Client) -> None:
    response = bulk(http, cf, {"secrets": ["A"]})

    assert response.status_code == 400
    assert cf.versions_of(SCRIPT) == 1
