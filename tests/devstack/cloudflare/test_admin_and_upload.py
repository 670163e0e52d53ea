"""The ``/__devstack`` admin API and the real multipart script upload."""

from __future__ import annotations

import json
import re

import httpx

from syncd.devstack.cloudflare import CloudflareEmulator
from tests.devstack.cloudflare.helpers import SCRIPT, script_path, text_secret


def test_defaults_are_an_account_id_and_a_write_token(cf: CloudflareEmulator) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", cf.account_id)
    assert cf.api_base == cf.url + "/client/v4"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", cf.url)


def test_admin_script_state_includes_values_and_versions(
    cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client
) -> None:
    http.put(script_path(cf) + "/secrets", json=text_secret("A", "value")).raise_for_status()

    state = admin.get(f"/accounts/{cf.account_id}/workers/scripts/{SCRIPT}").json()

    assert state["secrets"] == {"A": {"name": "A", "type": "secret_text", "text": "value"}}
    assert state["versions"] == 2
    assert state["deployment"]["versions"] == [{"version_id": cf.latest_version(SCRIPT).id, "percentage": 100}]


def test_admin_creates_accounts_scripts_namespaces_and_tokens(cf: CloudflareEmulator, admin: httpx.Client) -> None:
    account = admin.post("/accounts").json()["account_id"]
    admin.post(f"/accounts/{account}/workers/scripts", json={"name": "svc", "plain_text": {"MODE": "x"}})
    admin.post(f"/accounts/{account}/workers/dispatch/namespaces", json={"name": "ns"})
    admin.post(f"/accounts/{account}/workers/dispatch/namespaces/ns/scripts", json={"name": "tenant"})
    token = admin.post("/tokens", json={"permission": "write", "account_id": account}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}

    collision = httpx.put(
        f"{cf.api_base}/accounts/{account}/workers/scripts/svc/secrets", json=text_secret("MODE", "y"), headers=headers
    )
    tenant = httpx.put(
        f"{cf.api_base}/accounts/{account}/workers/dispatch/namespaces/ns/scripts/tenant/secrets",
        json=text_secret("T", "t"),
        headers=headers,
    )
    tenant_state = admin.get(f"/accounts/{account}/workers/dispatch/namespaces/ns/scripts/tenant").json()

    assert collision.json()["errors"][0]["code"] == 10053
    assert tenant.status_code == 200
    assert tenant_state["secrets"] == {"T": {"name": "T", "type": "secret_text", "text": "t"}}
    assert tenant_state["versions"] == 2


def test_admin_undeployed_uploads_a_version_and_redeploys_it(
    cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client
) -> None:
    admin.post(f"/accounts/{cf.account_id}/workers/scripts/{SCRIPT}/undeployed", json={"undeployed": True})
    refused = http.put(script_path(cf) + "/secrets", json=text_secret("A", "v"))
    admin.post(f"/accounts/{cf.account_id}/workers/scripts/{SCRIPT}/undeployed", json={"undeployed": False})
    accepted = http.put(script_path(cf) + "/secrets", json=text_secret("A", "v"))

    assert refused.json()["errors"][0]["code"] == 10215
    assert accepted.status_code == 200
    assert [v.annotations["workers/triggered_by"] for v in cf.version_list(SCRIPT)] == ["upload", "upload", "secret"]


def test_admin_global_key_and_custom_token(cf: CloudflareEmulator, admin: httpx.Client) -> None:
    admin.post("/global-keys", json={"email": "ops@example.com", "key": "abcdef0123"}).raise_for_status()
    admin.post("/tokens", json={"token": "my-read-token", "permission": "read"}).raise_for_status()
    url = cf.api_base + script_path(cf) + "/secrets"

    by_key = httpx.get(url, headers={"X-Auth-Email": "ops@example.com", "X-Auth-Key": "abcdef0123"})
    by_read_token = httpx.put(url, json=text_secret("A", "v"), headers={"Authorization": "Bearer my-read-token"})

    assert by_key.status_code == 200
    assert by_read_token.status_code == 403


def test_admin_rejects_bad_input(cf: CloudflareEmulator, admin: httpx.Client) -> None:
    assert admin.post("/tokens", json={"permission": "root"}).status_code == 400
    assert admin.post(f"/accounts/{cf.account_id}/workers/scripts", json={"name": "Bad Name"}).status_code == 400
    assert admin.get(f"/accounts/{cf.account_id}/workers/scripts/unknown").status_code == 404
    assert admin.post("/config", json={"no_such_field": 1}).status_code == 400


def multipart_upload(metadata: dict[str, object]) -> tuple[bytes, str]:
    boundary = "----syncd-test-boundary"
    parts = [
        ("metadata", "application/json", json.dumps(metadata)),
        ("index.js", "application/javascript+module", "export default { fetch() {} }"),
    ]
    chunks = []
    for name, content_type, content in parts:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n{content}\r\n"
        )
    chunks.append(f"--{boundary}--\r\n")
    return "".join(chunks).encode(), f"multipart/form-data; boundary={boundary}"


def test_upload_creates_script_with_plain_text_and_secret_bindings(cf: CloudflareEmulator, http: httpx.Client) -> None:
    body, content_type = multipart_upload(
        {
            "main_module": "index.js",
            "bindings": [
                {"type": "plain_text", "name": "REGION", "text": "eu"},
                {"type": "secret_text", "name": "TOKEN", "text": "t"},
            ],
        }
    )

    response = http.put(script_path(cf, "uploaded"), content=body, headers={"Content-Type": content_type})
    collision = http.put(script_path(cf, "uploaded") + "/secrets", json=text_secret("REGION", "x"))

    assert response.status_code == 200
    assert response.json()["result"]["id"] == "uploaded"
    assert cf.secrets_of("uploaded") == {"TOKEN": {"name": "TOKEN", "type": "secret_text", "text": "t"}}
    assert cf.versions_of("uploaded") == 1
    assert collision.json()["errors"][0]["code"] == 10053


def test_reupload_keeps_secrets_only_when_asked(cf: CloudflareEmulator, http: httpx.Client) -> None:
    http.put(script_path(cf) + "/secrets", json=text_secret("A", "v")).raise_for_status()
    keep, content_type = multipart_upload({"main_module": "index.js", "keep_bindings": ["secret_text"]})
    drop, _ = multipart_upload({"main_module": "index.js"})

    http.put(script_path(cf), content=keep, headers={"Content-Type": content_type}).raise_for_status()
    kept = cf.secrets_of(SCRIPT)
    http.put(script_path(cf), content=drop, headers={"Content-Type": content_type}).raise_for_status()

    assert set(kept) == {"A"}
    assert cf.secrets_of(SCRIPT) == {}
    assert cf.versions_of(SCRIPT) == 4


def test_upload_under_a_dispatch_namespace(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.create_namespace("ns")
    body, content_type = multipart_upload({"main_module": "index.js"})

    response = http.put(
        f"/accounts/{cf.account_id}/workers/dispatch/namespaces/ns/scripts/tenant",
        content=body,
        headers={"Content-Type": content_type},
    )

    assert response.status_code == 200
    assert cf.versions_of("tenant", namespace="ns") == 1


def test_upload_rejects_invalid_name_and_missing_metadata(cf: CloudflareEmulator, http: httpx.Client) -> None:
    body, content_type = multipart_upload({"main_module": "index.js"})
    no_main, _ = multipart_upload({"main_module": "missing.js"})

    bad_name = http.put(script_path(cf, "Bad_Name"), content=body, headers={"Content-Type": content_type})
    missing_main = http.put(script_path(cf, "ok"), content=no_main, headers={"Content-Type": content_type})
    not_multipart = http.put(script_path(cf, "ok"), json={"main_module": "index.js"})

    assert (bad_name.status_code, bad_name.json()["errors"][0]["code"]) == (400, 10016)
    assert missing_main.status_code == 400
    assert not_multipart.status_code == 400


def test_unknown_dispatch_namespace_is_404(cf: CloudflareEmulator, http: httpx.Client) -> None:
    response = http.get(f"/accounts/{cf.account_id}/workers/dispatch/namespaces/none/scripts/x/secrets")

    assert response.status_code == 404


def test_request_log_and_fault_injection_come_from_httpkit(
    cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client
) -> None:
    admin.post("/faults", json={"method": "PUT", "path": "/client/v4/accounts/*/secrets", "status": 503})

    failed = http.put(script_path(cf) + "/secrets", json=text_secret("A", "v"))
    log = admin.get("/requests").json()["requests"]

    assert failed.status_code == 503
    assert cf.secrets_of(SCRIPT) == {}
    assert [(entry["method"], entry["status"]) for entry in log] == [("PUT", 503)]
