"""Versions, deployments, settings and ``versions/latest`` on the wire: envelopes, codes, paging.

``PATCH .../workers/workers/{script}/versions/latest`` is sent exactly as wrangler's
``versions secret put`` sends it (``patchLatestWorkerVersionWithSecrets``: merge-patch ``env`` plus
``annotations``, ``Content-Type: application/merge-patch+json``).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from syncd.devstack.cloudflare import CloudflareEmulator
from tests.devstack.cloudflare.helpers import SCRIPT, script_path, text_secret

CANARY = "canary-wire-versions-91c2"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def beta_path(cf: CloudflareEmulator, script: str = SCRIPT) -> str:
    return f"/accounts/{cf.account_id}/workers/workers/{script}/versions"


def stage(http: httpx.Client, cf: CloudflareEmulator, env: dict[str, Any], message: str = "syncd") -> httpx.Response:
    body = {"env": env, "annotations": {"workers/message": message, "workers/tag": None}}
    return http.patch(beta_path(cf) + "/latest", content=json.dumps(body), headers=MERGE_PATCH)


def test_versions_latest_stages_secrets_in_a_new_version_without_deploying_it(
    cf: CloudflareEmulator, http: httpx.Client
) -> None:
    http.patch(
        script_path(cf) + "/secrets-bulk",
        json={"secrets": {"KEEP": text_secret("KEEP", CANARY + "-keep"), "DROP": text_secret("DROP", "d")}},
    ).raise_for_status()
    deployed = cf.latest_version(SCRIPT)

    response = stage(
        http,
        cf,
        {
            "NEW": {"type": "secret_text", "text": CANARY + "-new"},
            "KEEP": {"type": "secret_text", "name": "KEEP"},  # inherited: keeps its value
            "DROP": None,
        },
    )

    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert CANARY not in response.text
    assert result["number"] == 3
    assert result["annotations"] == {"workers/message": "syncd", "workers/triggered_by": "secret"}
    assert sorted(b["name"] for b in result["bindings"]) == ["KEEP", "NEW"]
    staged = cf.latest_version(SCRIPT)
    assert {n: s["text"] for n, s in staged.secrets.items()} == {"KEEP": CANARY + "-keep", "NEW": CANARY + "-new"}
    deployment = cf.current_deployment(SCRIPT)
    assert deployment is not None and deployment.split == [(deployed.id, 100)]
    assert set(cf.secrets_of(SCRIPT)) == {"KEEP", "NEW"}  # the secrets API shows the latest version


def test_a_staged_version_blocks_secret_edits_until_it_is_deployed(cf: CloudflareEmulator, http: httpx.Client) -> None:
    stage(http, cf, {"A": {"type": "secret_text", "text": "staged"}}).raise_for_status()

    put = http.put(script_path(cf) + "/secrets", json=text_secret("B", "b"))
    delete = http.delete(script_path(cf) + "/secrets/A")
    bulk = http.patch(script_path(cf) + "/secrets-bulk", json={"secrets": {"B": text_secret("B", "b")}})
    deploy = http.post(
        script_path(cf) + "/deployments",
        json={"strategy": "percentage", "versions": [{"version_id": cf.latest_version(SCRIPT).id, "percentage": 100}]},
    )
    after = http.put(script_path(cf) + "/secrets", json=text_secret("B", "b"))

    assert [(r.status_code, r.json()["errors"][0]["code"]) for r in (put, delete, bulk)] == [
        (400, 10215),
        (400, 10215),
        (400, 10214),
    ]
    assert deploy.status_code == 200
    assert deploy.json()["result"]["versions"] == [{"version_id": cf.version_list(SCRIPT)[1].id, "percentage": 100}]
    assert after.status_code == 200
    assert cf.versions_of(SCRIPT) == 3


def test_versions_latest_on_a_script_without_versions_is_10222(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.create_script("empty", with_version=False)

    response = http.patch(
        f"/accounts/{cf.account_id}/workers/workers/empty/versions/latest",
        content=json.dumps({"env": {"A": {"type": "secret_text", "text": "x"}}}),
        headers=MERGE_PATCH,
    )

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["errors"][0]["code"] == 10222


def test_inheriting_a_binding_that_does_not_exist_is_refused_and_changes_nothing(
    cf: CloudflareEmulator, http: httpx.Client
) -> None:
    response = stage(http, cf, {"GHOST": {"type": "secret_text", "name": "GHOST"}})

    assert (response.status_code, response.json()["errors"][0]["code"]) == (400, 10021)
    assert cf.versions_of(SCRIPT) == 1


def test_versions_are_paged_newest_first_with_result_info(cf: CloudflareEmulator, http: httpx.Client) -> None:
    for n in range(4):
        http.put(script_path(cf) + "/secrets", json=text_secret(f"S{n}", "x")).raise_for_status()

    second = http.get(script_path(cf) + "/versions", params={"page": 2, "per_page": 2}).json()
    everything = http.get(script_path(cf) + "/versions", params={"deployable": "true", "per_page": 1}).json()
    beyond = http.get(script_path(cf) + "/versions", params={"page": 9, "per_page": 2}).json()
    beta = http.get(beta_path(cf), params={"page": 1, "per_page": 3}).json()

    assert [v["number"] for v in second["result"]["items"]] == [3, 2]
    assert second["result_info"] == {"page": 2, "per_page": 2, "count": 2, "total_count": 5, "total_pages": 3}
    assert [v["number"] for v in everything["result"]["items"]] == [5, 4, 3, 2, 1]
    assert beyond["result"]["items"] == []
    assert [v["number"] for v in beta["result"]] == [5, 4, 3]
    assert set(second["result"]["items"][0]) == {"id", "number", "metadata", "annotations"}


def test_bad_paging_and_unknown_ids_answer_in_the_envelope(cf: CloudflareEmulator, http: httpx.Client) -> None:
    bad_page = http.get(script_path(cf) + "/versions", params={"per_page": "zero"})
    unknown = http.get(script_path(cf) + "/versions/00000000-0000-4000-8000-000000000000")
    unknown_beta = http.get(beta_path(cf) + "/00000000-0000-4000-8000-000000000000")
    no_script = http.get(script_path(cf, "nope") + "/versions")

    assert bad_page.status_code == 400 and bad_page.json()["success"] is False
    assert (unknown.status_code, unknown.json()["result"]) == (404, None)
    assert unknown_beta.status_code == 404
    assert (no_script.status_code, no_script.json()["errors"][0]["code"]) == (404, 10007)


def test_deployment_bodies_are_checked(cf: CloudflareEmulator, http: httpx.Client) -> None:
    one = cf.latest_version(SCRIPT).id
    two = cf.upload_code(SCRIPT).id
    url = script_path(cf) + "/deployments"

    def post(body: dict[str, Any]) -> int:
        return http.post(url, json=body).status_code

    assert post({"strategy": "immediate", "versions": [{"version_id": one, "percentage": 100}]}) == 400
    assert post({"strategy": "percentage", "versions": [{"version_id": one, "percentage": 60}]}) == 400
    assert post({"strategy": "percentage", "versions": []}) == 400
    three = [{"version_id": one, "percentage": 50}, {"version_id": two, "percentage": 25}] * 2
    assert post({"strategy": "percentage", "versions": three}) == 400
    assert post({"strategy": "percentage", "versions": [{"version_id": "missing", "percentage": 100}]}) == 404
    assert len(cf.lifecycle.deployments((cf.account_id, SCRIPT, None))) == 1
    split = [{"version_id": two, "percentage": 30}, {"version_id": one, "percentage": 70}]
    assert post({"strategy": "percentage", "versions": split}) == 200
    listed = http.get(url).json()["result"]["deployments"]
    assert listed[0]["versions"] == split
    assert http.get(url + "/" + listed[0]["id"]).json()["result"] == listed[0]


def test_version_upload_is_not_deployed_and_script_upload_with_keep_bindings_keeps_secrets(
    cf: CloudflareEmulator, http: httpx.Client
) -> None:
    http.put(script_path(cf) + "/secrets", json=text_secret("A", CANARY)).raise_for_status()
    metadata = {
        "main_module": "index.js",
        "bindings": [{"type": "plain_text", "name": "MODE", "text": "v2"}],
        "keep_bindings": ["secret_text", "secret_key"],
        "annotations": {"workers/message": "code only"},
    }
    files: Any = {
        "metadata": (None, json.dumps(metadata), "application/json"),
        "index.js": ("index.js", b"export default {}", "application/javascript+module"),
    }

    version = http.post(script_path(cf) + "/versions", files=files)
    refused = http.put(script_path(cf) + "/secrets", json=text_secret("B", "b"))
    deployed = http.put(script_path(cf), files=files)

    assert version.status_code == 200, version.text
    assert version.json()["result"]["number"] == 3
    assert version.json()["result"]["annotations"]["workers/triggered_by"] == "upload"
    assert CANARY not in version.text
    assert refused.json()["errors"][0]["code"] == 10215
    assert deployed.status_code == 200
    latest = cf.latest_version(SCRIPT)
    assert (latest.number, latest.secrets["A"]["text"], latest.plain_text) == (4, CANARY, {"MODE": "v2"})
    deployment = cf.current_deployment(SCRIPT)
    assert deployment is not None and deployment.split == [(latest.id, 100)]


def test_dispatch_namespace_scripts_have_versions_and_deployments(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.create_namespace("tenants")
    cf.create_script("tenant-1", namespace="tenants")
    base = f"/accounts/{cf.account_id}/workers/dispatch/namespaces/tenants/scripts/tenant-1"
    http.put(base + "/secrets", json=text_secret("T", CANARY)).raise_for_status()

    versions = http.get(base + "/versions").json()["result"]["items"]
    deployments = http.get(base + "/deployments").json()["result"]["deployments"]

    assert [v["number"] for v in versions] == [2, 1]
    assert deployments[0]["versions"] == [{"version_id": versions[0]["id"], "percentage": 100}]


def test_no_listing_or_version_ever_shows_a_secret_value(cf: CloudflareEmulator, http: httpx.Client) -> None:
    http.put(script_path(cf) + "/secrets", json=text_secret("A", CANARY + "-put")).raise_for_status()
    http.patch(script_path(cf) + "/secrets-bulk", json={"secrets": {"B": text_secret("B", CANARY + "-bulk")}})
    stage(http, cf, {"C": {"type": "secret_text", "text": CANARY + "-staged"}}).raise_for_status()
    cf.hand_edit(SCRIPT, upserts={"D": text_secret("D", CANARY + "-hand")})
    ids = [v.id for v in cf.version_list(SCRIPT)]

    answers = [
        http.get(script_path(cf) + "/versions", params={"per_page": 100}),
        http.get(script_path(cf) + "/versions", params={"deployable": "true"}),
        http.get(script_path(cf) + "/deployments"),
        http.get(script_path(cf) + "/settings"),
        http.get(script_path(cf) + "/secrets"),
        http.get(beta_path(cf)),
        *(http.get(script_path(cf) + f"/versions/{version_id}") for version_id in ids),
        *(http.get(beta_path(cf) + f"/{version_id}") for version_id in ids),
    ]

    assert all(answer.status_code == 200 for answer in answers)
    leaking = [str(answer.request.url) for answer in answers if CANARY in answer.text]
    assert leaking == []
    values = [s["text"] for v in cf.version_list(SCRIPT) for s in v.secrets.values()]
    assert CANARY + "-hand" in values  # the values are there, only never shown


def test_settings_patch_with_a_settings_part_replaces_the_binding_list(
    cf: CloudflareEmulator, http: httpx.Client
) -> None:
    http.patch(
        script_path(cf) + "/secrets-bulk",
        json={"secrets": {"A": text_secret("A", CANARY), "B": text_secret("B", "b")}},
    ).raise_for_status()
    bindings = [{"type": "secret_text", "name": "A"}, {"type": "secret_text", "name": "C", "text": "c"}]

    response = http.patch(script_path(cf) + "/settings", files={"settings": (None, json.dumps({"bindings": bindings}))})
    no_part = http.patch(script_path(cf) + "/settings", files={"other": (None, "{}")})

    assert response.status_code == 200, response.text
    assert sorted(b["name"] for b in response.json()["result"]["bindings"]) == ["A", "C"]
    assert {n: s["text"] for n, s in cf.secrets_of(SCRIPT).items()} == {"A": CANARY, "C": "c"}
    assert no_part.status_code == 400


def test_a_rollback_to_a_version_with_other_secrets_needs_force(cf: CloudflareEmulator, http: httpx.Client) -> None:
    http.put(script_path(cf) + "/secrets", json=text_secret("A", CANARY)).raise_for_status()  # version 2
    http.put(script_path(cf) + "/secrets", json=text_secret("A", CANARY + "-rotated")).raise_for_status()  # 3
    old = cf.version_list(SCRIPT)[1].id
    body = {"strategy": "percentage", "versions": [{"version_id": old, "percentage": 100}]}

    refused = http.post(script_path(cf) + "/deployments", json=body)
    forced = http.post(script_path(cf) + "/deployments", params={"force": "true"}, json=body)
    forward = http.post(
        script_path(cf) + "/deployments",
        json={"strategy": "percentage", "versions": [{"version_id": cf.latest_version(SCRIPT).id, "percentage": 100}]},
    )

    assert (refused.status_code, refused.json()["errors"][0]["code"]) == (400, 10220)
    assert refused.json()["errors"][0]["message"].endswith("The following secrets have changed: A")
    assert CANARY not in refused.text
    assert forced.status_code == 200
    assert forward.status_code == 200  # deploying a newer version is never a rollback
