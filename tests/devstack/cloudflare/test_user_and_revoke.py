"""``GET /user`` (User Details) per kind of credential, and token revocation (method + admin route)."""

from __future__ import annotations

from urllib.parse import quote

import cloudflare
import httpx
import pytest

from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.devstack.cloudflare.auth import DEFAULT_USER_EMAIL, user_id_of
from tests.devstack.cloudflare.helpers import script_path

EMAIL = "ops@example.com"
KEY = "0123456789abcdef0123456789abcdef01234"


def test_user_details_with_global_key_names_the_keys_user(cf: CloudflareEmulator) -> None:
    cf.add_global_key(EMAIL, KEY)
    with cloudflare.Cloudflare(api_email=EMAIL, api_key=KEY, base_url=cf.api_base, max_retries=0) as client:
        user = client.user.get()

    assert user is not None
    assert user.email == EMAIL
    assert user.id == user_id_of(EMAIL)
    assert len(user.id) == 32


def test_user_details_with_user_token_names_the_default_user(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare
) -> None:
    user = sdk.user.get()

    assert user is not None
    assert user.email == DEFAULT_USER_EMAIL


def test_user_details_answers_with_envelope_and_ratelimit_headers(cf: CloudflareEmulator) -> None:
    response = httpx.get(cf.api_base + "/user", headers={"Authorization": f"Bearer {cf.api_token}"})

    body = response.json()
    assert response.status_code == 200
    assert body["success"] is True
    assert body["errors"] == []
    assert set(body["result"]) >= {"id", "email", "organizations", "suspended"}
    assert "Ratelimit" in response.headers


def test_user_details_refuses_an_account_owned_token_with_10000(cf: CloudflareEmulator) -> None:
    token = cf.create_token("read", account_id=cf.account_id)

    response = httpx.get(cf.api_base + "/user", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert response.json()["errors"] == [{"code": 10000, "message": "Authentication error"}]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"X-Auth-Email": EMAIL, "X-Auth-Key": "wrongkey0123"}, 403, 9103),
        ({"X-Auth-Email": "nobody@example.com", "X-Auth-Key": KEY}, 403, 9103),
        ({"Authorization": "Bearer not-a-known-token"}, 403, 9109),
        ({"X-Auth-Email": EMAIL}, 403, 9106),
        ({}, 400, 9106),
    ],
)
def test_user_details_with_unknown_credentials_fails_like_other_endpoints(
    cf: CloudflareEmulator, headers: dict[str, str], status: int, code: int
) -> None:
    cf.add_global_key(EMAIL, KEY)

    response = httpx.get(cf.api_base + "/user", headers=headers)

    assert response.status_code == status
    assert response.json()["success"] is False
    assert response.json()["errors"][0]["code"] == code


def test_revoked_token_is_unknown_on_every_endpoint(cf: CloudflareEmulator) -> None:
    kept = cf.create_token("write")
    revoked = cf.create_token("write")
    secrets_url = cf.api_base + script_path(cf) + "/secrets"

    cf.revoke_token(revoked)

    refused = httpx.get(secrets_url, headers={"Authorization": f"Bearer {revoked}"})
    verify = httpx.get(cf.api_base + "/user/tokens/verify", headers={"Authorization": f"Bearer {revoked}"})
    still_fine = httpx.get(secrets_url, headers={"Authorization": f"Bearer {kept}"})
    assert (refused.status_code, refused.json()["errors"][0]["code"]) == (403, 9109)
    assert (verify.status_code, verify.json()["errors"][0]["code"]) == (401, 1000)
    assert still_fine.status_code == 200


def test_revoking_an_unknown_token_raises_key_error(cf: CloudflareEmulator) -> None:
    cf.revoke_token(cf.api_token)

    with pytest.raises(KeyError):
        cf.revoke_token(cf.api_token)


def test_admin_route_revokes_a_token_with_reserved_characters(cf: CloudflareEmulator, admin: httpx.Client) -> None:
    token = cf.create_token("write", token="abc/def+ghi==")
    secrets_url = cf.api_base + script_path(cf) + "/secrets"
    before = httpx.get(secrets_url, headers={"Authorization": f"Bearer {token}"})

    revoked = admin.delete("/tokens/" + quote(token, safe=""))
    again = admin.delete("/tokens/" + quote(token, safe=""))
    after = httpx.get(secrets_url, headers={"Authorization": f"Bearer {token}"})

    assert before.status_code == 200
    assert (revoked.status_code, revoked.json()) == (200, {"revoked": True})
    assert again.status_code == 404
    assert after.status_code == 403
