"""sys/auth plus AppRole and Kubernetes logins through hvac."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import hvac
import hvac.exceptions
import pytest

from syncd.devstack.vault import VaultEmulator

from .conftest import make_jwt

NOW = 1_760_000_000


def test_enable_list_and_disable_auth_methods(root: hvac.Client) -> None:
    root.sys.enable_auth_method("approle")
    root.sys.enable_auth_method("kubernetes", path="k8s-prod")

    methods = root.sys.list_auth_methods()["data"]
    assert methods["approle/"]["type"] == "approle"
    assert methods["k8s-prod/"]["type"] == "kubernetes"
    assert methods["token/"]["type"] == "token"

    root.sys.disable_auth_method("approle")
    assert "approle/" not in root.sys.list_auth_methods()["data"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="already in use"):
        root.sys.enable_auth_method("kubernetes", path="k8s-prod")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.enable_auth_method("no-such-method")


@pytest.fixture
def approle(root: hvac.Client) -> tuple[str, str]:
    root.sys.enable_auth_method("approle")
    root.sys.create_or_update_acl_policy(name="app", policy='path "secret/data/app/*" { capabilities = ["read"] }')
    root.auth.approle.create_or_update_approle(
        "syncd", token_policies=["app"], token_ttl="20m", token_max_ttl="30m", secret_id_ttl="1h"
    )
    role_id = root.auth.approle.read_role_id("syncd")["data"]["role_id"]
    secret = root.auth.approle.generate_secret_id("syncd")["data"]
    assert set(secret) >= {"secret_id", "secret_id_accessor", "secret_id_ttl"}
    return role_id, secret["secret_id"]


def test_approle_login_returns_a_working_token(
    root: hvac.Client, approle: tuple[str, str], client_for: Callable[..., hvac.Client]
) -> None:
    root.secrets.kv.v2.create_or_update_secret("app/cfg", secret={"k": "v"})
    role_id, secret_id = approle
    client = client_for(None)

    auth = client.auth.approle.login(role_id=role_id, secret_id=secret_id)["auth"]

    assert auth["policies"] == ["app", "default"]
    assert auth["token_policies"] == ["app", "default"]
    assert auth["lease_duration"] == 1200
    assert auth["renewable"] is True
    assert auth["metadata"] == {"role_name": "syncd"}
    assert auth["token_type"] == "service"
    assert auth["orphan"] is True
    assert auth["entity_id"]
    assert client.token == auth["client_token"]
    assert client.secrets.kv.v2.read_secret_version("app/cfg", raise_on_deleted_version=True)["data"]["data"]


def test_approle_token_renewal_is_capped_by_token_max_ttl(
    vault: VaultEmulator, approle: tuple[str, str], client_for: Callable[..., hvac.Client]
) -> None:
    client = client_for(None)
    client.auth.approle.login(role_id=approle[0], secret_id=approle[1])
    vault.state.clock.advance(600)
    renewed = client.auth.token.renew_self(increment="1h")
    assert renewed["auth"]["lease_duration"] == 1200
    assert "exceeded the effective max_ttl" in renewed["warnings"][0]


def test_approle_bad_credentials_are_invalid_requests(
    vault: VaultEmulator, approle: tuple[str, str], client_for: Callable[..., hvac.Client]
) -> None:
    client = client_for(None)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        client.auth.approle.login(role_id=approle[0], secret_id="wrong")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        client.auth.approle.login(role_id="unknown", secret_id=approle[1])
    vault.state.clock.advance(3601)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        client.auth.approle.login(role_id=approle[0], secret_id=approle[1])


def test_approle_secret_id_use_limit(root: hvac.Client, approle: tuple[str, str], vault: VaultEmulator) -> None:
    root.auth.approle.create_or_update_approle("syncd", token_policies=["app"], secret_id_num_uses=1)
    secret_id = root.auth.approle.generate_secret_id("syncd")["data"]["secret_id"]
    body = {"role_id": approle[0], "secret_id": secret_id}
    assert httpx.post(vault.url + "/v1/auth/approle/login", json=body).status_code == 200
    second = httpx.post(vault.url + "/v1/auth/approle/login", json=body)
    assert second.status_code == 400
    assert second.json() == {"errors": ["invalid role or secret ID"]}


def test_approle_role_read_and_list(root: hvac.Client, approle: tuple[str, str]) -> None:
    role = root.auth.approle.read_role("syncd")["data"]
    assert role["token_policies"] == ["app"]
    assert role["token_ttl"] == 1200
    assert role["token_max_ttl"] == 1800
    assert role["secret_id_ttl"] == 3600
    assert role["bind_secret_id"] is True
    assert root.auth.approle.list_roles()["data"]["keys"] == ["syncd"]


def test_approle_at_a_custom_mount(root: hvac.Client, client_for: Callable[..., hvac.Client]) -> None:
    root.sys.enable_auth_method("approle", path="ci/approle")
    root.auth.approle.create_or_update_approle("r", token_policies=["default"], mount_point="ci/approle")
    role_id = root.auth.approle.read_role_id("r", mount_point="ci/approle")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("r", mount_point="ci/approle")["data"]["secret_id"]
    auth = client_for(None).auth.approle.login(role_id, secret_id, mount_point="ci/approle")["auth"]
    assert auth["policies"] == ["default"]


@pytest.fixture
def kubernetes(root: hvac.Client) -> None:
    root.sys.enable_auth_method("kubernetes")
    root.auth.kubernetes.configure(kubernetes_host="https://kubernetes.default.svc")
    root.auth.kubernetes.create_role(
        "syncd",
        bound_service_account_names=["syncd", "syncd-*"],
        bound_service_account_namespaces=["platform"],
        policies=["default"],
        ttl="15m",
    )


def _legacy_jwt(name: str = "syncd", namespace: str = "platform", exp: float | None = None) -> str:
    claims: dict[str, object] = {
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/secret.name": f"{name}-token-abc",
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": "uid-legacy",
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }
    if exp is not None:
        claims["exp"] = exp
    return make_jwt(claims)


def _projected_jwt(name: str = "syncd", namespace: str = "platform", exp: float = NOW + 3600) -> str:
    return make_jwt(
        {
            "aud": ["https://kubernetes.default.svc"],
            "exp": exp,
            "iat": NOW,
            "iss": "https://kubernetes.default.svc",
            "kubernetes.io": {
                "namespace": namespace,
                "pod": {"name": "syncd-0", "uid": "pod-uid"},
                "serviceaccount": {"name": name, "uid": "uid-projected"},
            },
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
    )


@pytest.mark.usefixtures("kubernetes")
def test_kubernetes_login_with_a_legacy_token(client_for: Callable[..., hvac.Client]) -> None:
    auth = client_for(None).auth.kubernetes.login("syncd", _legacy_jwt())["auth"]
    assert auth["metadata"] == {
        "role": "syncd",
        "service_account_name": "syncd",
        "service_account_namespace": "platform",
        "service_account_secret_name": "syncd-token-abc",
        "service_account_uid": "uid-legacy",
    }
    assert auth["lease_duration"] == 900
    assert auth["policies"] == ["default"]


@pytest.mark.usefixtures("kubernetes")
def test_kubernetes_login_with_a_projected_token_and_glob_name(client_for: Callable[..., hvac.Client]) -> None:
    client = client_for(None)
    auth = client.auth.kubernetes.login("syncd", _projected_jwt(name="syncd-worker"))["auth"]
    assert auth["metadata"]["service_account_uid"] == "uid-projected"
    assert auth["metadata"]["service_account_name"] == "syncd-worker"
    assert auth["metadata"]["service_account_secret_name"] == ""
    assert client.auth.token.lookup_self()["data"]["meta"]["role"] == "syncd"


@pytest.mark.usefixtures("kubernetes")
def test_kubernetes_login_refuses_wrong_account_namespace_and_role(client_for: Callable[..., hvac.Client]) -> None:
    client = client_for(None)
    with pytest.raises(hvac.exceptions.Forbidden, match="service account name not authorized"):
        client.auth.kubernetes.login("syncd", _legacy_jwt(name="intruder"))
    with pytest.raises(hvac.exceptions.Forbidden, match="namespace not authorized"):
        client.auth.kubernetes.login("syncd", _projected_jwt(namespace="default"))
    with pytest.raises(hvac.exceptions.InvalidRequest, match='invalid role name "nope"'):
        client.auth.kubernetes.login("nope", _legacy_jwt())


@pytest.mark.usefixtures("kubernetes")
def test_kubernetes_login_refuses_an_expired_jwt_by_the_clock(
    vault: VaultEmulator, client_for: Callable[..., hvac.Client]
) -> None:
    jwt = _projected_jwt(exp=NOW + 60)
    client_for(None).auth.kubernetes.login("syncd", jwt)
    httpx.post(vault.url + "/__devstack/clock", json={"advance": 60 + 151})
    with pytest.raises(hvac.exceptions.Forbidden, match="expired"):
        client_for(None).auth.kubernetes.login("syncd", jwt)


@pytest.mark.usefixtures("kubernetes")
def test_kubernetes_config_and_role_read_back(root: hvac.Client) -> None:
    assert root.auth.kubernetes.read_config()["kubernetes_host"] == "https://kubernetes.default.svc"
    role = root.auth.kubernetes.read_role("syncd")
    assert role["bound_service_account_namespaces"] == ["platform"]
    assert role["token_ttl"] == 900
    assert root.auth.kubernetes.list_roles()["keys"] == ["syncd"]
