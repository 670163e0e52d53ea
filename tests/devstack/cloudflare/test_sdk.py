"""The emulator driven by the official ``cloudflare`` Python SDK over real HTTP."""

from __future__ import annotations

import cloudflare
import pytest

from syncd.devstack.cloudflare import CloudflareEmulator
from tests.devstack.cloudflare.helpers import HMAC_KEY, SCRIPT


def test_update_text_secret_stores_value_and_returns_only_metadata(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare
) -> None:
    result = sdk.workers.scripts.secrets.update(
        SCRIPT, account_id=cf.account_id, name="API_KEY", text="s3cret", type="secret_text"
    )

    assert result is not None
    assert result.to_dict() == {"name": "API_KEY", "type": "secret_text"}
    assert cf.secrets_of(SCRIPT) == {"API_KEY": {"name": "API_KEY", "type": "secret_text", "text": "s3cret"}}
    assert cf.versions_of(SCRIPT) == 2


def test_update_key_secret_returns_format_algorithm_and_usages(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare
) -> None:
    body = {k: v for k, v in HMAC_KEY.items() if k != "name"}
    result = sdk.workers.scripts.secrets.update(SCRIPT, account_id=cf.account_id, name="SIGNING_KEY", **body)  # type: ignore[call-overload]

    assert result is not None
    assert result.to_dict() == {
        "name": "SIGNING_KEY",
        "type": "secret_key",
        "format": "raw",
        "algorithm": {"name": "HMAC", "hash": "SHA-256"},
        "usages": ["sign", "verify"],
    }
    assert cf.secrets_of(SCRIPT)["SIGNING_KEY"]["key_base64"] == HMAC_KEY["key_base64"]


def test_list_and_get_never_return_values(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare) -> None:
    secrets = sdk.workers.scripts.secrets
    secrets.update(SCRIPT, account_id=cf.account_id, name="A", text="one", type="secret_text")
    secrets.update(SCRIPT, account_id=cf.account_id, name="B", text="two", type="secret_text")

    listed = [item.to_dict() for item in secrets.list(SCRIPT, account_id=cf.account_id)]
    one = secrets.get("B", account_id=cf.account_id, script_name=SCRIPT)

    assert listed == [{"name": "A", "type": "secret_text"}, {"name": "B", "type": "secret_text"}]
    assert one is not None
    assert one.to_dict() == {"name": "B", "type": "secret_text"}


def test_delete_removes_secret_and_adds_a_version(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare) -> None:
    secrets = sdk.workers.scripts.secrets
    secrets.update(SCRIPT, account_id=cf.account_id, name="GONE", text="x", type="secret_text")

    assert secrets.delete("GONE", account_id=cf.account_id, script_name=SCRIPT) is None
    assert cf.secrets_of(SCRIPT) == {}
    assert cf.versions_of(SCRIPT) == 3


def test_bulk_update_applies_merge_patch_in_one_version(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare) -> None:
    secrets = sdk.workers.scripts.secrets
    secrets.update(SCRIPT, account_id=cf.account_id, name="OLD", text="x", type="secret_text")
    secrets.update(SCRIPT, account_id=cf.account_id, name="KEEP", text="k", type="secret_text")

    result = secrets.bulk_update(
        SCRIPT,
        account_id=cf.account_id,
        secrets={
            "OLD": None,
            "NEW": {"name": "NEW", "type": "secret_text", "text": "n"},
            "SIGNING_KEY": HMAC_KEY,  # type: ignore[dict-item]
        },
    )

    assert result is not None
    assert {name: item.type for name, item in result.items()} == {
        "KEEP": "secret_text",
        "NEW": "secret_text",
        "SIGNING_KEY": "secret_key",
    }
    assert set(cf.secrets_of(SCRIPT)) == {"KEEP", "NEW", "SIGNING_KEY"}
    assert cf.secrets_of(SCRIPT)["NEW"]["text"] == "n"
    assert cf.versions_of(SCRIPT) == 4  # created, two PUTs, one bulk call


def test_dispatch_namespace_secrets_work_like_script_secrets(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare
) -> None:
    cf.create_namespace("tenants")
    cf.create_script("tenant-1", namespace="tenants")
    secrets = sdk.workers_for_platforms.dispatch.namespaces.scripts.secrets
    account, ns = cf.account_id, "tenants"

    secrets.update("tenant-1", account_id=account, dispatch_namespace=ns, name="T", text="t", type="secret_text")
    secrets.bulk_update(
        "tenant-1",
        account_id=account,
        dispatch_namespace=ns,
        secrets={"U": {"name": "U", "type": "secret_text", "text": "u"}},
    )
    listed = [item.name for item in secrets.list("tenant-1", account_id=account, dispatch_namespace=ns)]
    got = secrets.get("U", account_id=account, dispatch_namespace=ns, script_name="tenant-1")
    secrets.delete("T", account_id=account, dispatch_namespace=ns, script_name="tenant-1")

    assert listed == ["T", "U"]
    assert got is not None and got.name == "U"
    assert cf.secrets_of("tenant-1", namespace="tenants") == {"U": {"name": "U", "type": "secret_text", "text": "u"}}
    assert cf.versions_of("tenant-1", namespace="tenants") == 4
    assert cf.secrets_of(SCRIPT) == {}


def test_token_verify_reports_active_token(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare) -> None:
    result = sdk.user.tokens.verify()

    assert result is not None
    assert result.status == "active"
    assert len(result.id) == 32


def test_account_token_verify(cf: CloudflareEmulator) -> None:
    token = cf.create_token("read", account_id=cf.account_id)
    with cloudflare.Cloudflare(api_token=token, base_url=cf.api_base, max_retries=0) as client:
        result = client.accounts.tokens.verify(account_id=cf.account_id)
        with pytest.raises(cloudflare.AuthenticationError) as caught:
            client.user.tokens.verify()

    assert result is not None and result.status == "active"
    assert caught.value.status_code == 401


def test_invalid_secret_raises_bad_request(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare) -> None:
    with pytest.raises(cloudflare.BadRequestError) as caught:
        sdk.workers.scripts.secrets.update(
            SCRIPT, account_id=cf.account_id, name="BIG", text="x" * 5121, type="secret_text"
        )

    assert caught.value.status_code == 400
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["errors"][0]["code"] == 10054


def test_unknown_script_raises_not_found(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare) -> None:
    with pytest.raises(cloudflare.NotFoundError) as caught:
        sdk.workers.scripts.secrets.list("no-such-worker", account_id=cf.account_id)

    assert isinstance(caught.value.body, dict)
    assert caught.value.body["errors"][0]["code"] == 10007


def test_read_only_token_cannot_write(cf: CloudflareEmulator) -> None:
    token = cf.create_token("read")
    with cloudflare.Cloudflare(api_token=token, base_url=cf.api_base, max_retries=0) as client:
        listed = list(client.workers.scripts.secrets.list(SCRIPT, account_id=cf.account_id))
        with pytest.raises(cloudflare.PermissionDeniedError) as caught:
            client.workers.scripts.secrets.update(
                SCRIPT, account_id=cf.account_id, name="X", text="x", type="secret_text"
            )

    assert listed == []
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["errors"] == [{"code": 10000, "message": "Authentication error"}]


def test_unknown_token_raises_permission_denied(cf: CloudflareEmulator) -> None:
    with (
        cloudflare.Cloudflare(api_token="not-a-known-token", base_url=cf.api_base, max_retries=0) as client,
        pytest.raises(cloudflare.PermissionDeniedError) as caught,
    ):
        client.workers.scripts.secrets.list(SCRIPT, account_id=cf.account_id)

    assert isinstance(caught.value.body, dict)
    assert caught.value.body["errors"][0]["code"] == 9109


def test_rate_limit_raises_rate_limit_error(cf: CloudflareEmulator) -> None:
    cf.set_rate_limit(limit=2, window=60.0)
    with cloudflare.Cloudflare(api_token=cf.api_token, base_url=cf.api_base, max_retries=0) as client:
        client.workers.scripts.secrets.list(SCRIPT, account_id=cf.account_id)
        client.workers.scripts.secrets.list(SCRIPT, account_id=cf.account_id)
        with pytest.raises(cloudflare.RateLimitError) as caught:
            client.workers.scripts.secrets.list(SCRIPT, account_id=cf.account_id)

    assert caught.value.response.headers["Retry-After"] == "300"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["errors"][0]["code"] == 971


def test_global_api_key_authenticates(cf: CloudflareEmulator) -> None:
    cf.add_global_key("ops@example.com", "0123456789abcdef0123456789abcdef01234")
    with cloudflare.Cloudflare(
        api_email="ops@example.com",
        api_key="0123456789abcdef0123456789abcdef01234",
        base_url=cf.api_base,
        max_retries=0,
    ) as client:
        client.workers.scripts.secrets.update(SCRIPT, account_id=cf.account_id, name="G", text="g", type="secret_text")

    assert cf.secrets_of(SCRIPT)["G"]["text"] == "g"
