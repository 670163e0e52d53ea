"""The admin API for versions: gradual deployments, hand edits, code deploys, values for assertions."""

from __future__ import annotations

import httpx

from syncd.devstack.cloudflare import CloudflareEmulator
from tests.devstack.cloudflare.helpers import SCRIPT, script_path, text_secret

CANARY = "canary-admin-versions-5d1e"


def admin_script(cf: CloudflareEmulator, script: str = SCRIPT) -> str:
    return f"/accounts/{cf.account_id}/workers/scripts/{script}"


def test_a_hand_edit_overwrites_and_deletes_as_another_author_and_is_deployed(
    cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client
) -> None:
    http.patch(
        script_path(cf) + "/secrets-bulk",
        json={"secrets": {"OWNED": text_secret("OWNED", CANARY), "GONE": text_secret("GONE", "g")}},
    ).raise_for_status()

    overwrite = admin.post(
        admin_script(cf) + "/hand-edit",
        json={"set": {"OWNED": text_secret("OWNED", "by hand")}, "author_email": "ops@example.com", "source": "dash"},
    )
    delete = admin.post(admin_script(cf) + "/hand-edit", json={"delete": ["GONE"], "source": "wrangler"})
    missing = admin.post(admin_script(cf) + "/hand-edit", json={"delete": ["NOPE"]})
    listed = http.get(script_path(cf) + "/versions").json()["result"]["items"]

    assert overwrite.status_code == 201 and delete.status_code == 201
    assert missing.status_code == 400 and "NOPE" in missing.json()["error"]
    assert [(v["number"], v["metadata"]["author_email"], v["metadata"]["source"]) for v in listed[:2]] == [
        (4, "someone.else@example.com", "wrangler"),
        (3, "ops@example.com", "dash"),
    ]
    assert listed[0]["annotations"] == {"workers/triggered_by": "secret"}
    assert {n: s["text"] for n, s in cf.secrets_of(SCRIPT).items()} == {"OWNED": "by hand"}
    deployment = http.get(script_path(cf) + "/deployments").json()["result"]["deployments"][0]
    assert deployment["versions"] == [{"version_id": listed[0]["id"], "percentage": 100}]
    assert deployment["author_email"] == "someone.else@example.com"


def test_a_gradual_deployment_and_reading_a_staged_versions_values(
    cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client
) -> None:
    http.put(script_path(cf) + "/secrets", json=text_secret("A", CANARY)).raise_for_status()
    uploaded = admin.post(admin_script(cf) + "/versions", json={"message": "new code", "deploy": False})
    gradual = admin.post(
        admin_script(cf) + "/deployments",
        json={"versions": [{"version": 3, "percentage": 25}, {"version": 2, "percentage": 75}], "source": "wrangler"},
    )
    refused = http.put(script_path(cf) + "/secrets", json=text_secret("A", "new"))
    values = admin.get(admin_script(cf) + "/versions/3").json()
    every = admin.get(admin_script(cf) + "/versions").json()
    bad_split = admin.post(admin_script(cf) + "/deployments", json={"versions": [{"version": 3, "percentage": 25}]})

    assert uploaded.status_code == 201
    assert uploaded.json()["annotations"] == {"workers/message": "new code", "workers/triggered_by": "upload"}
    assert gradual.status_code == 201
    assert [v["percentage"] for v in gradual.json()["versions"]] == [25, 75]
    assert refused.json()["errors"][0]["code"] == 10215
    assert values["secrets"] == {"A": text_secret("A", CANARY)}
    assert [v["number"] for v in every["versions"]] == [1, 2, 3]
    assert every["deployment"] == gradual.json()
    assert bad_split.status_code == 400


def test_a_code_deploy_that_keeps_secrets_and_one_that_drops_them(
    cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client
) -> None:
    http.put(script_path(cf) + "/secrets", json=text_secret("A", CANARY)).raise_for_status()

    kept = admin.post(admin_script(cf) + "/versions", json={"deploy": True, "plain_text": {"MODE": "2"}})
    after_keep = http.put(script_path(cf) + "/secrets", json=text_secret("B", "b"))
    dropped = admin.post(admin_script(cf) + "/versions", json={"deploy": True, "keep_secrets": False})

    assert kept.status_code == 201 and after_keep.status_code == 200
    assert cf.version_list(SCRIPT)[2].secrets == {"A": text_secret("A", CANARY)}
    assert cf.version_list(SCRIPT)[2].plain_text == {"MODE": "2"}
    assert dropped.status_code == 201
    assert cf.secrets_of(SCRIPT) == {}


def test_a_script_without_versions_and_the_undeployed_route_for_namespaced_scripts(
    cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client
) -> None:
    admin.post(f"/accounts/{cf.account_id}/workers/scripts", json={"name": "bare", "with_version": False})
    cf.create_namespace("ns")
    cf.create_script("tenant", namespace="ns")
    tenant = f"/accounts/{cf.account_id}/workers/dispatch/namespaces/ns/scripts/tenant"

    admin.post(tenant + "/undeployed", json={"undeployed": True}).raise_for_status()
    refused = http.put(tenant + "/secrets", json=text_secret("T", "t"))
    admin.post(tenant + "/undeployed", json={"undeployed": False}).raise_for_status()
    accepted = http.put(tenant + "/secrets", json=text_secret("T", "t"))

    assert http.get(script_path(cf, "bare") + "/versions").json()["result"]["items"] == []
    assert http.get(script_path(cf, "bare") + "/deployments").json()["result"]["deployments"] == []
    assert refused.json()["errors"][0]["code"] == 10215
    assert accepted.status_code == 200
    assert cf.versions_of("tenant", namespace="ns") == 3
