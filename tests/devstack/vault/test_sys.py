"""sys/mounts, sys/internal/ui/mounts, sys/health and the seal through hvac."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import hvac
import hvac.exceptions
import pytest

from syncd.devstack.vault import VaultEmulator

from .conftest import token_with_policy


def test_default_mounts_are_kv_v2_at_secret_and_v1_at_kv(root: hvac.Client) -> None:
    mounts = root.sys.list_mounted_secrets_engines()["data"]
    assert mounts["secret/"]["type"] == "kv"
    assert mounts["secret/"]["options"] == {"version": "2"}
    assert mounts["kv/"]["options"] == {"version": "1"}


def test_enable_and_disable_secret_engines(root: hvac.Client) -> None:
    root.sys.enable_secrets_engine(backend_type="kv-v2", path="apps")
    root.sys.enable_secrets_engine(backend_type="kv", path="legacy")

    mounts = root.sys.list_mounted_secrets_engines()
    assert mounts["apps/"]["options"] == {"version": "2"}  # also at the top level, like Vault
    assert mounts["data"]["legacy/"]["options"] is None
    root.secrets.kv.v1.create_or_update_secret("x", secret={"a": "1"}, mount_point="legacy")

    root.sys.disable_secrets_engine("apps")
    assert "apps/" not in root.sys.list_mounted_secrets_engines()["data"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version("x", mount_point="apps", raise_on_deleted_version=True)


def test_enabling_a_taken_path_or_unknown_type_fails(root: hvac.Client) -> None:
    with pytest.raises(hvac.exceptions.InvalidRequest, match="already in use"):
        root.sys.enable_secrets_engine(backend_type="kv", path="secret")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.enable_secrets_engine(backend_type="transit", path="transit")


def test_ui_mounts_reports_type_and_version_for_any_sub_path(root: hvac.Client) -> None:
    data = root.adapter.get("/v1/sys/internal/ui/mounts/secret/deep/path")["data"]
    v1 = root.adapter.get("/v1/sys/internal/ui/mounts/kv/x")["data"]
    assert data["type"] == "kv"
    assert data["options"] == {"version": "2"}
    assert data["path"] == "secret/"
    assert v1["options"] == {"version": "1"}


def test_ui_mounts_needs_a_capability_inside_the_mount(
    root: hvac.Client, client_for: Callable[..., hvac.Client]
) -> None:
    allowed = token_with_policy(root, "one", 'path "secret/data/app/*" { capabilities = ["read"] }')
    other = token_with_policy(root, "two", 'path "kv/*" { capabilities = ["read"] }')
    assert client_for(allowed).adapter.get("/v1/sys/internal/ui/mounts/secret")["data"]["type"] == "kv"
    with pytest.raises(hvac.exceptions.Forbidden):
        client_for(other).adapter.get("/v1/sys/internal/ui/mounts/secret")


def test_health_is_200_when_unsealed_and_503_when_sealed(root: hvac.Client, vault: VaultEmulator) -> None:
    health = root.sys.read_health_status(method="GET")
    assert health["initialized"] is True and health["sealed"] is False and health["standby"] is False

    root.sys.seal()
    raw = httpx.get(vault.url + "/v1/sys/health")
    assert raw.status_code == 503
    assert raw.json()["sealed"] is True
    head = httpx.head(vault.url + "/v1/sys/health")
    assert head.status_code == 503
    assert head.content == b""


def test_health_query_overrides_status_codes(vault: VaultEmulator) -> None:
    assert httpx.get(vault.url + "/v1/sys/health", params={"activecode": "299"}).status_code == 299
    httpx.post(vault.url + "/__devstack/seal")
    assert httpx.get(vault.url + "/v1/sys/health", params={"sealedcode": "200"}).status_code == 200


def test_sealed_vault_raises_vault_down_until_unsealed(root: hvac.Client) -> None:
    root.sys.seal()
    assert root.sys.is_sealed() is True
    with pytest.raises(hvac.exceptions.VaultDown, match="Vault is sealed"):
        root.secrets.kv.v2.read_secret_version("x", raise_on_deleted_version=True)

    status = root.sys.submit_unseal_key(key="any-key")
    assert status["sealed"] is False
    assert root.sys.read_seal_status()["sealed"] is False
    root.secrets.kv.v2.create_or_update_secret("x", secret={"a": "1"})


def test_unseal_without_key_is_rejected(root: hvac.Client) -> None:
    root.sys.seal()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.submit_unseal_key()
    assert root.sys.is_sealed() is True


def test_seal_needs_sudo(root: hvac.Client, client_for: Callable[..., hvac.Client]) -> None:
    token = token_with_policy(root, "sealer", 'path "sys/seal" { capabilities = ["update"] }')
    with pytest.raises(hvac.exceptions.Forbidden):
        client_for(token).sys.seal()
    assert root.sys.is_sealed() is False


def test_context_manager_and_url(vault: VaultEmulator) -> None:
    assert vault.url.startswith("http://127.0.0.1:")
    with VaultEmulator(port=0) as other:
        assert httpx.get(other.url + "/v1/sys/health").status_code == 200
