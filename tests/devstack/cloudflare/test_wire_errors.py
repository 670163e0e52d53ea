"""Exact statuses and bodies of the failure answers, pinned with raw httpx."""

from __future__ import annotations

from typing import Any

import httpx

from syncd.devstack.cloudflare import CloudflareEmulator
from tests.devstack.cloudflare.helpers import HMAC_KEY, SCRIPT, script_path, text_secret


def failure_body(code: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"success": False, "errors": [{"code": code, "message": message, **extra}], "messages": [], "result": None}


def test_success_envelope_has_all_four_keys(cf: CloudflareEmulator, http: httpx.Client) -> None:
    response = http.put(script_path(cf) + "/secrets", json=text_secret("A", "v"))

    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "errors": [],
        "messages": [],
        "result": {"name": "A", "type": "secret_text"},
    }


def test_unknown_route_is_7003_with_7000(cf: CloudflareEmulator, http: httpx.Client) -> None:
    response = http.get(f"/accounts/{cf.account_id}/workers/nothing-here")

    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "errors": [
            {
                "code": 7003,
                "message": f"Could not route to /accounts/{cf.account_id}/workers/nothing-here, "
                "perhaps your object identifier is invalid?",
            },
            {"code": 7000, "message": "No route for that URI"},
        ],
        "messages": [],
        "result": None,
    }


def test_account_id_that_is_not_an_identifier_does_not_route(http: httpx.Client) -> None:
    response = http.get(f"/accounts/NOT-HEX/workers/scripts/{SCRIPT}/secrets")

    assert response.json()["errors"][0]["code"] == 7003


def test_wrong_verb_is_7001(cf: CloudflareEmulator, http: httpx.Client) -> None:
    response = http.post(script_path(cf) + "/secrets", json={})

    assert response.status_code == 405
    assert response.json() == failure_body(7001, "Method POST not available for that URI.")


def test_malformed_json_is_6007(cf: CloudflareEmulator, http: httpx.Client) -> None:
    response = http.put(
        script_path(cf) + "/secrets", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json() == failure_body(6007, "Malformed JSON in request body")


def test_missing_credentials_is_9106(cf: CloudflareEmulator) -> None:
    response = httpx.get(cf.api_base + script_path(cf) + "/secrets")

    assert response.status_code == 400
    assert response.json() == failure_body(9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")


def test_half_of_the_legacy_pair_is_9106(cf: CloudflareEmulator) -> None:
    response = httpx.get(cf.api_base + script_path(cf) + "/secrets", headers={"X-Auth-Key": "abc123"})

    assert response.status_code == 403
    assert response.json() == failure_body(9106, "Missing X-Auth-Email header")


def test_malformed_authorization_header_is_6003_with_6111(cf: CloudflareEmulator) -> None:
    response = httpx.get(cf.api_base + script_path(cf) + "/secrets", headers={"Authorization": "Token abc"})

    assert response.status_code == 400
    assert response.json() == failure_body(
        6003,
        "Invalid request headers",
        error_chain=[{"code": 6111, "message": "Invalid format for Authorization header"}],
    )


def test_unknown_token_is_9109_403(cf: CloudflareEmulator) -> None:
    response = httpx.get(cf.api_base + script_path(cf) + "/secrets", headers={"Authorization": "Bearer nope"})

    assert response.status_code == 403
    assert response.json() == failure_body(9109, "Invalid access token")


def test_unknown_token_status_is_configurable(cf: CloudflareEmulator, admin: httpx.Client) -> None:
    admin.post("/config", json={"invalid_token_status": 401}).raise_for_status()

    response = httpx.get(cf.api_base + script_path(cf) + "/secrets", headers={"Authorization": "Bearer nope"})

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == 9109


def test_unknown_global_key_is_9103(cf: CloudflareEmulator) -> None:
    headers = {"X-Auth-Email": "who@example.com", "X-Auth-Key": "abc123"}
    response = httpx.get(cf.api_base + script_path(cf) + "/secrets", headers=headers)

    assert response.status_code == 403
    assert response.json() == failure_body(9103, "Unknown X-Auth-Key or X-Auth-Email")


def test_token_of_another_account_is_10000(cf: CloudflareEmulator) -> None:
    other = cf.create_account()
    token = cf.create_token("write", account_id=other)

    response = httpx.get(cf.api_base + script_path(cf) + "/secrets", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert response.json() == failure_body(10000, "Authentication error")


def test_verify_with_unknown_token_is_1000_401(cf: CloudflareEmulator) -> None:
    response = httpx.get(cf.api_base + "/user/tokens/verify", headers={"Authorization": "Bearer nope"})

    assert response.status_code == 401
    assert response.json() == failure_body(1000, "Invalid API Token")


def test_verify_success_message(cf: CloudflareEmulator, http: httpx.Client) -> None:
    body = http.get("/user/tokens/verify").json()

    assert body["success"] is True
    assert body["result"]["status"] == "active"
    assert body["messages"] == [{"code": 10000, "message": "This API Token is valid and active"}]


def test_unknown_script_is_10007_404(cf: CloudflareEmulator, http: httpx.Client) -> None:
    response = http.put(script_path(cf, "missing") + "/secrets", json=text_secret("A", "v"))

    assert response.status_code == 404
    assert response.json() == failure_body(10007, "This Worker does not exist on your account.")


def test_delete_of_absent_secret_is_10056_404(cf: CloudflareEmulator, http: httpx.Client) -> None:
    response = http.delete(script_path(cf) + "/secrets/ABSENT")

    assert response.status_code == 404
    assert response.json() == failure_body(
        10056, "Binding 'ABSENT' not found. Please use a different name and try again."
    )
    assert cf.versions_of(SCRIPT) == 1


def test_name_of_plain_text_var_is_10053(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.create_script("with-vars", plain_text={"REGION": "eu"})

    response = http.put(script_path(cf, "with-vars") + "/secrets", json=text_secret("REGION", "x"))

    assert response.status_code == 400
    assert response.json() == failure_body(
        10053, "Binding name 'REGION' already in use. Please use a different name and try again."
    )
    assert cf.secrets_of("with-vars") == {}


def test_value_over_5_kib_is_10054_and_5_kib_is_fine(cf: CloudflareEmulator, http: httpx.Client) -> None:
    at_limit = http.put(script_path(cf) + "/secrets", json=text_secret("OK", "x" * 5120))
    over = http.put(script_path(cf) + "/secrets", json=text_secret("BIG", "x" * 5121))

    assert at_limit.status_code == 200
    assert over.status_code == 400
    assert over.json()["errors"][0]["code"] == 10054
    assert set(cf.secrets_of(SCRIPT)) == {"OK"}


def test_variable_limit_counts_secrets_and_plain_text(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.create_script("full", plain_text={f"VAR_{i}": "v" for i in range(127)})

    first = http.put(script_path(cf, "full") + "/secrets", json=text_secret("S1", "x"))
    second = http.put(script_path(cf, "full") + "/secrets", json=text_secret("S2", "x"))
    replace = http.put(script_path(cf, "full") + "/secrets", json=text_secret("S1", "y"))

    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json()["errors"][0]["code"] == 10021
    assert replace.status_code == 200


def test_secret_body_validation(cf: CloudflareEmulator, http: httpx.Client) -> None:
    bad_bodies = [
        {"name": "A", "type": "secret_text"},
        {"type": "secret_text", "text": "x"},
        {"name": "A", "type": "plain_text", "text": "x"},
        {**HMAC_KEY, "format": "pem"},
        {**HMAC_KEY, "usages": ["sign", "fly"]},
        {**HMAC_KEY, "algorithm": "HMAC"},
        {k: v for k, v in HMAC_KEY.items() if k != "key_base64"},
        {**HMAC_KEY, "key_base64": "not base64!"},
        {**HMAC_KEY, "format": "jwk"},
        {"name": "not-an-identifier", "type": "secret_text", "text": "x"},
    ]

    statuses = [http.put(script_path(cf) + "/secrets", json=body) for body in bad_bodies]

    assert [(r.status_code, r.json()["errors"][0]["code"]) for r in statuses] == [(400, 10021)] * len(bad_bodies)
    assert cf.secrets_of(SCRIPT) == {}
    assert cf.versions_of(SCRIPT) == 1


def test_jwk_key_is_accepted(cf: CloudflareEmulator, http: httpx.Client) -> None:
    jwk = {"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}
    body = {**HMAC_KEY, "format": "jwk", "key_jwk": jwk}
    del body["key_base64"]

    response = http.put(script_path(cf) + "/secrets", json=body)

    assert response.status_code == 200
    assert "key_jwk" not in response.json()["result"]
    assert cf.secrets_of(SCRIPT)["SIGNING_KEY"]["key_jwk"] == jwk


def test_binding_name_policy_any_allows_other_names(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.config = cf.config.updated({"binding_name_policy": "any"})

    response = http.put(script_path(cf) + "/secrets", json=text_secret("odd@name", "x"))

    assert response.status_code == 200


def test_url_encoded_flag_decodes_the_name(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.config = cf.config.updated({"binding_name_policy": "any"})
    http.put(script_path(cf) + "/secrets", json=text_secret("a b", "x")).raise_for_status()

    without_flag = http.get(script_path(cf) + "/secrets/a%20b")
    with_flag = http.get(script_path(cf) + "/secrets/a%20b", params={"url_encoded": "true"})
    deleted = http.delete(script_path(cf) + "/secrets/a%20b", params={"url_encoded": "true"})

    assert without_flag.status_code == 404
    assert with_flag.json()["result"] == {"name": "a b", "type": "secret_text"}
    assert deleted.status_code == 200
    assert cf.secrets_of(SCRIPT) == {}


def test_undeployed_script_refuses_put_and_delete_with_10215(cf: CloudflareEmulator, http: httpx.Client) -> None:
    http.put(script_path(cf) + "/secrets", json=text_secret("A", "v")).raise_for_status()
    cf.set_undeployed(SCRIPT)

    put = http.put(script_path(cf) + "/secrets", json=text_secret("A", "new"))
    delete = http.delete(script_path(cf) + "/secrets/A")

    assert (put.status_code, put.json()["errors"][0]["code"]) == (400, 10215)
    assert put.json()["errors"][0]["message"].startswith("Secret edit failed.")
    assert (delete.status_code, delete.json()["errors"][0]["code"]) == (400, 10215)
    assert cf.secrets_of(SCRIPT)["A"]["text"] == "v"


def test_undeployed_script_refuses_bulk_with_10214(cf: CloudflareEmulator, http: httpx.Client) -> None:
    cf.set_undeployed(SCRIPT)

    response = http.patch(script_path(cf) + "/secrets-bulk", json={"secrets": {"A": text_secret("A", "v")}})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 10214
    assert response.json()["errors"][0]["message"].startswith("Script edit failed.")
    assert cf.versions_of(SCRIPT) == 2  # version 1 deployed, version 2 uploaded and not deployed
