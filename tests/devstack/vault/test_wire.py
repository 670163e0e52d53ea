"""Exact wire shapes pinned over raw HTTP: statuses, bodies and headers of Vault's answers."""

from __future__ import annotations

import json

import httpx

from syncd.devstack.vault import VaultEmulator

ENVELOPE_KEYS = [
    "request_id",
    "lease_id",
    "renewable",
    "lease_duration",
    "data",
    "wrap_info",
    "warnings",
    "auth",
    "mount_type",
]


def test_success_envelope_keys_order_and_headers(http: httpx.Client) -> None:
    http.post("/v1/secret/data/a", json={"data": {"b": "1", "a": "2"}})
    response = http.get("/v1/secret/data/a")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert list(body) == ENVELOPE_KEYS
    assert body["lease_id"] == "" and body["wrap_info"] is None and body["auth"] is None
    assert list(body["data"]["data"]) == ["a", "b"]  # Go marshals map keys sorted
    assert len(body["request_id"]) == 36


def test_missing_secret_is_404_with_an_empty_error_list(http: httpx.Client) -> None:
    response = http.get("/v1/secret/data/none")
    assert response.status_code == 404
    assert response.text == '{"errors":[]}\n'


def test_soft_deleted_version_is_404_with_the_full_envelope(http: httpx.Client) -> None:
    http.post("/v1/secret/data/s", json={"data": {"k": "v"}})
    assert http.delete("/v1/secret/data/s").status_code == 204

    response = http.get("/v1/secret/data/s")

    assert response.status_code == 404
    body = response.json()
    assert list(body) == ENVELOPE_KEYS
    assert body["data"]["data"] is None
    assert body["data"]["metadata"]["version"] == 1
    assert body["data"]["metadata"]["destroyed"] is False
    assert body["data"]["metadata"]["deletion_time"].endswith("Z")
    assert body["mount_type"] == ""


def test_bare_path_on_a_v2_mount_warns_about_the_versioned_engine(http: httpx.Client) -> None:
    response = http.get("/v1/secret/foo")
    assert response.status_code == 404
    assert response.json()["data"] is None
    assert response.json()["warnings"][0].startswith("Invalid path for a versioned K/V secrets engine.")


def test_policy_denial_is_403_with_the_multi_error_text(vault: VaultEmulator, http: httpx.Client) -> None:
    http.put("/v1/sys/policies/acl/none", json={"policy": 'path "other/*" { capabilities = ["read"] }'})
    token = http.post("/v1/auth/token/create", json={"policies": ["none"]}).json()["auth"]["client_token"]

    response = httpx.get(vault.url + "/v1/secret/data/x", headers={"X-Vault-Token": token})

    assert response.status_code == 403
    assert response.json() == {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}


def test_missing_and_invalid_tokens_are_403(vault: VaultEmulator) -> None:
    missing = httpx.get(vault.url + "/v1/secret/data/x")
    invalid = httpx.get(vault.url + "/v1/secret/data/x", headers={"X-Vault-Token": "hvs.nope"})

    assert missing.status_code == 403
    assert missing.json() == {"errors": ["permission denied"]}
    assert invalid.status_code == 403
    assert invalid.json() == {"errors": ["2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"]}


def test_bearer_authorization_header_is_accepted(vault: VaultEmulator) -> None:
    response = httpx.get(
        vault.url + "/v1/auth/token/lookup-self", headers={"Authorization": f"Bearer {vault.root_token}"}
    )
    assert response.status_code == 200
    assert response.json()["data"]["id"] == vault.root_token


def test_unknown_verb_is_405_with_empty_errors(http: httpx.Client) -> None:
    response = http.request("PROPFIND", "/v1/secret/data/x")
    assert response.status_code == 405
    assert response.json() == {"errors": []}


def test_unsupported_operation_on_a_known_path_is_405(http: httpx.Client) -> None:
    response = http.request("LIST", "/v1/sys/mounts")
    assert response.status_code in (404, 405)
    response = http.delete("/v1/secret/subkeys/x")
    assert response.status_code == 405
    assert response.json() == {"errors": ["1 error occurred:\n\t* unsupported operation\n\n"]}


def test_patch_needs_merge_patch_content_type(http: httpx.Client) -> None:
    http.post("/v1/secret/data/p", json={"data": {"a": "1"}})

    wrong = http.patch(
        "/v1/secret/data/p", content=json.dumps({"data": {"b": "2"}}), headers={"Content-Type": "application/json"}
    )
    right = http.patch(
        "/v1/secret/data/p",
        content=json.dumps({"data": {"b": "2", "a": None}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )

    assert wrong.status_code == 415
    assert wrong.json() == {
        "errors": ["PATCH requires Content-Type of application/merge-patch+json, provided application/json"]
    }
    assert right.status_code == 200
    assert right.json()["data"]["version"] == 2
    assert http.get("/v1/secret/data/p").json()["data"]["data"] == {"b": "2"}


def test_patch_of_a_missing_secret_is_404(http: httpx.Client) -> None:
    response = http.patch(
        "/v1/secret/data/nothing",
        content=b'{"data":{"a":"1"}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 404
    assert response.json() == {"errors": []}


def test_metadata_patch_merges_custom_metadata(http: httpx.Client) -> None:
    http.post("/v1/secret/metadata/m", json={"custom_metadata": {"a": "1", "b": "2"}, "max_versions": 4})
    patched = http.patch(
        "/v1/secret/metadata/m",
        content=b'{"custom_metadata":{"a":null,"c":"3"}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 204
    data = http.get("/v1/secret/metadata/m").json()["data"]
    assert data["custom_metadata"] == {"b": "2", "c": "3"}
    assert data["max_versions"] == 4
    assert data["current_version"] == 0


def test_cas_mismatch_text_is_exact(http: httpx.Client) -> None:
    http.post("/v1/secret/data/c", json={"data": {"a": "1"}})
    response = http.post("/v1/secret/data/c", json={"options": {"cas": 5}, "data": {"a": "2"}})
    assert response.status_code == 400
    assert response.json() == {"errors": ["check-and-set parameter did not match the current version"]}


def test_write_without_data_is_400(http: httpx.Client) -> None:
    response = http.post("/v1/secret/data/c", json={"nodata": True})
    assert response.status_code == 400
    assert response.json() == {"errors": ["no data provided"]}


def test_no_body_operations_answer_204_with_empty_body(http: httpx.Client) -> None:
    response = http.post("/v1/kv/thing", json={"a": "b"})
    assert response.status_code == 204
    assert response.content == b""


def test_list_verb_and_list_query_are_the_same(http: httpx.Client) -> None:
    http.post("/v1/secret/data/dir/a", json={"data": {"x": "1"}})
    by_verb = http.request("LIST", "/v1/secret/metadata/dir")
    by_query = http.get("/v1/secret/metadata/dir", params={"list": "true"})
    assert by_verb.json()["data"] == by_query.json()["data"] == {"keys": ["a"]}


def test_put_writes_like_post(http: httpx.Client) -> None:
    assert http.put("/v1/secret/data/put", json={"data": {"a": "1"}}).status_code == 200
    assert http.get("/v1/secret/data/put").json()["data"]["data"] == {"a": "1"}


def test_subkeys_show_structure_without_values_and_honour_depth(http: httpx.Client) -> None:
    http.post("/v1/secret/data/nested", json={"data": {"a": "1", "b": {"c": "2", "d": {"e": "3"}}}})

    full = http.get("/v1/secret/subkeys/nested").json()["data"]
    shallow = http.get("/v1/secret/subkeys/nested", params={"depth": "1"}).json()["data"]

    assert full["subkeys"] == {"a": None, "b": {"c": None, "d": {"e": None}}}
    assert shallow["subkeys"] == {"a": None, "b": None}
    assert full["metadata"]["version"] == 1


def test_unknown_mount_says_no_handler_for_route(http: httpx.Client) -> None:
    response = http.get("/v1/nomount/data/x")
    assert response.status_code == 404
    assert response.json() == {"errors": ['no handler for route "nomount/data/x". route entry not found.']}


def test_sealed_vault_answers_503_everywhere_but_health(vault: VaultEmulator, http: httpx.Client) -> None:
    assert http.put("/v1/sys/seal").status_code == 204

    sealed = http.get("/v1/secret/data/x")
    health = http.get("/v1/sys/health")

    assert sealed.status_code == 503
    assert sealed.json() == {"errors": ["Vault is sealed"]}
    assert health.status_code == 503
    assert health.json()["sealed"] is True
    assert http.put("/v1/sys/unseal", json={"key": "any"}).json()["sealed"] is False
    assert http.get("/v1/sys/health").status_code == 200


def test_rfc3339_timestamps_have_nanoseconds(http: httpx.Client) -> None:
    created = http.post("/v1/secret/data/t", json={"data": {"a": "1"}}).json()["data"]["created_time"]
    assert created.endswith("Z")
    assert "." in created
    assert len(created.split(".")[1].rstrip("Z")) <= 9


def test_request_log_records_vault_calls(vault: VaultEmulator, http: httpx.Client) -> None:
    http.get("/v1/secret/data/missing")
    log = httpx.get(vault.url + "/__devstack/requests").json()["requests"]
    assert {"method": "GET", "path": "/v1/secret/data/missing", "status": 404} in [
        {k: entry[k] for k in ("method", "path", "status")} for entry in log
    ]


def test_fault_injection_applies_to_vault_paths(vault: VaultEmulator, http: httpx.Client) -> None:
    httpx.post(vault.url + "/__devstack/faults", json={"path": "/v1/secret/*", "status": 503, "count": 1})
    assert http.get("/v1/secret/data/x").status_code == 503
    assert http.get("/v1/secret/data/x").status_code == 404
