"""VaultReader and VaultTokenManager against the Vault emulator, over real HTTP with hvac."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hvac
import pytest
import requests
from structlog.testing import capture_logs

from syncd.clients.vault import VaultReader, build_hvac_client
from syncd.clients.vault_auth import AppRoleLogin, TokenLogin, VaultTokenManager
from syncd.devstack.vault import VaultEmulator
from syncd.errors import (
    VaultAuthError,
    VaultPermissionDenied,
    VaultSecretDeleted,
    VaultSecretNotFound,
    VaultUnavailable,
)
from syncd.model import KvVersion, SecretValue, VaultSecretRef
from tests.clients.conftest import CANARY_VALUE, assert_error_clean, assert_no_canary


@pytest.fixture(scope="module")
def vault() -> Iterator[VaultEmulator]:
    emulator = VaultEmulator(port=0)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def admin(vault: VaultEmulator) -> Any:
    return hvac.Client(url=vault.url, token=vault.root_token)


def client_for(vault: VaultEmulator, token: str = "") -> Any:
    client = build_hvac_client(vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=4)
    client.token = token
    return client


def emulator_now(vault: VaultEmulator) -> float:
    return float(requests.get(f"{vault.url}/__devstack/clock", timeout=5).json()["now"])


def advance(vault: VaultEmulator, seconds: float) -> None:
    requests.post(f"{vault.url}/__devstack/clock", json={"advance": seconds}, timeout=5).raise_for_status()


def test_kv_versions_of_the_default_mounts(vault: VaultEmulator) -> None:
    reader = VaultReader(client_for(vault, vault.root_token))
    assert reader.kv_version("secret") is KvVersion.V2
    assert reader.kv_version("kv") is KvVersion.V1


def test_kv2_version_check_and_exact_reads(vault: VaultEmulator) -> None:
    root = admin(vault)
    root.secrets.kv.v2.create_or_update_secret("it/rotating", {"api_key": "old"}, mount_point="secret")
    root.secrets.kv.v2.create_or_update_secret("it/rotating", {"api_key": CANARY_VALUE}, mount_point="secret")
    reader = VaultReader(client_for(vault, vault.root_token), clock=lambda: emulator_now(vault))
    ref = VaultSecretRef("secret", "it/rotating")
    info = reader.current_version(ref, KvVersion.V2)
    assert info.version == 2 and not info.deleted and not info.destroyed
    assert info.created_time is not None
    assert reader.read(ref, KvVersion.V2, 2).data.text("api_key").reveal() == CANARY_VALUE
    assert reader.read(ref, KvVersion.V2, 1).data.text("api_key").reveal() == "old"


def test_kv2_deleted_and_destroyed_versions(vault: VaultEmulator) -> None:
    root = admin(vault)
    for value in ("v1", "v2", "v3"):
        root.secrets.kv.v2.create_or_update_secret("it/deleted", {"k": value}, mount_point="secret")
    root.secrets.kv.v2.delete_secret_versions("it/deleted", versions=[3], mount_point="secret")
    root.secrets.kv.v2.destroy_secret_versions("it/deleted", versions=[2], mount_point="secret")
    reader = VaultReader(client_for(vault, vault.root_token), clock=lambda: emulator_now(vault))
    ref = VaultSecretRef("secret", "it/deleted")
    info = reader.current_version(ref, KvVersion.V2)
    assert info.version == 3 and info.deleted
    with pytest.raises(VaultSecretDeleted, match="deleted"):
        reader.read(ref, KvVersion.V2, 3)
    with pytest.raises(VaultSecretDeleted, match="destroyed"):
        reader.read(ref, KvVersion.V2, 2)
    assert reader.read(ref, KvVersion.V2, 1).data.raw("k") == "v1"
    with pytest.raises(VaultSecretNotFound):
        reader.read(ref, KvVersion.V2, 7)


def test_kv1_read(vault: VaultEmulator) -> None:
    admin(vault).secrets.kv.v1.create_or_update_secret("it/legacy", {"password": CANARY_VALUE}, mount_point="kv")
    reader = VaultReader(client_for(vault, vault.root_token))
    ref = VaultSecretRef("kv", "it/legacy")
    assert reader.current_version(ref, KvVersion.V1).version is None
    got = reader.read(ref, KvVersion.V1, None)
    assert got.version is None and got.data.text("password").reveal() == CANARY_VALUE


def test_missing_path(vault: VaultEmulator) -> None:
    reader = VaultReader(client_for(vault, vault.root_token))
    with pytest.raises(VaultSecretNotFound):
        reader.current_version(VaultSecretRef("secret", "it/nothing-here"), KvVersion.V2)
    with pytest.raises(VaultSecretNotFound):
        reader.read(VaultSecretRef("kv", "it/nothing-here"), KvVersion.V1, None)


def test_limited_policy_is_denied_outside_its_paths(vault: VaultEmulator) -> None:
    root = admin(vault)
    root.secrets.kv.v2.create_or_update_secret("it/allowed", {"k": "a"}, mount_point="secret")
    root.secrets.kv.v2.create_or_update_secret("it/forbidden", {"k": CANARY_VALUE}, mount_point="secret")
    policy = """
path "secret/data/it/allowed" { capabilities = ["read"] }
path "secret/metadata/it/allowed" { capabilities = ["read"] }
"""
    root.sys.create_or_update_policy("it-limited", policy)
    token = root.auth.token.create(policies=["it-limited"], ttl="1h")["auth"]["client_token"]
    reader = VaultReader(client_for(vault, token))
    assert reader.current_version(VaultSecretRef("secret", "it/allowed"), KvVersion.V2).version == 1
    with pytest.raises(VaultPermissionDenied) as info:
        reader.read(VaultSecretRef("secret", "it/forbidden"), KvVersion.V2, 1)
    assert "secret/data/it/forbidden" in str(info.value)
    assert_error_clean(info.value)
    assert token not in f"{info.value} {info.value!r}"


def test_invalid_token_with_manager_says_auth_error(vault: VaultEmulator) -> None:
    reader = VaultReader(client_for(vault, "hvs.not-a-token"), token_valid=lambda: False)
    with pytest.raises(VaultAuthError):
        reader.current_version(VaultSecretRef("secret", "it/allowed"), KvVersion.V2)


def test_sealed_vault_is_unavailable_after_retries(vault: VaultEmulator) -> None:
    reader = VaultReader(client_for(vault, vault.root_token), retry_attempts=2)
    requests.post(f"{vault.url}/__devstack/seal", timeout=5).raise_for_status()
    try:
        with pytest.raises(VaultUnavailable, match="sealed"):
            reader.current_version(VaultSecretRef("secret", "it/rotating"), KvVersion.V2)
    finally:
        requests.post(f"{vault.url}/__devstack/unseal", timeout=5).raise_for_status()


def test_injected_503_then_success(vault: VaultEmulator) -> None:
    admin(vault).secrets.kv.v2.create_or_update_secret("it/flaky", {"k": "v"}, mount_point="secret")
    fault = {"method": "GET", "path": "/v1/secret/metadata/it/flaky", "status": 503, "count": 1}
    requests.post(f"{vault.url}/__devstack/faults", json=fault, timeout=5).raise_for_status()
    reader = VaultReader(client_for(vault, vault.root_token))
    assert reader.current_version(VaultSecretRef("secret", "it/flaky"), KvVersion.V2).version == 1


def _approle(vault: VaultEmulator, role: str, ttl: str, max_ttl: str) -> tuple[str, str]:
    root = admin(vault)
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    root.sys.create_or_update_policy("it-read", 'path "secret/*" { capabilities = ["read"] }')
    root.auth.approle.create_or_update_approle(role, token_policies=["it-read"], token_ttl=ttl, token_max_ttl=max_ttl)
    role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    return role_id, secret_id


def test_approle_login_renew_and_relogin_at_max_ttl(vault: VaultEmulator) -> None:
    role_id, secret_id = _approle(vault, "it-syncd", ttl="60s", max_ttl="150s")
    client = client_for(vault)
    login = AppRoleLogin(lambda: SecretValue(role_id), lambda: SecretValue(secret_id))
    manager = VaultTokenManager(client, login, lambda: emulator_now(vault), rng=lambda: 0.5)
    with capture_logs() as logs:
        delay = manager.maintain()
        first_token = client.token
        assert manager.is_valid() and first_token
        assert delay == pytest.approx(60 * 2 / 3 * 0.85, abs=1)
        reader = VaultReader(client, token_valid=manager.is_valid)
        admin(vault).secrets.kv.v2.create_or_update_secret("it/app", {"k": "v"}, mount_point="secret")
        assert reader.current_version(VaultSecretRef("secret", "it/app"), KvVersion.V2).version == 1

        advance(vault, delay)
        manager.maintain()  # renewal: same token, 60s more
        assert client.token == first_token
        assert manager.expires_at == pytest.approx(emulator_now(vault) + 60, abs=2)

        advance(vault, manager.maintain())
        advance(vault, 40)
        manager.maintain()  # the max TTL (150s) caps this renewal: a new login
        assert client.token != first_token
        assert manager.is_valid()
        assert reader.current_version(VaultSecretRef("secret", "it/app"), KvVersion.V2).version == 1
    assert_no_canary(logs)
    assert first_token not in repr(logs) and secret_id not in repr(logs)
    assert first_token not in repr(manager)


def test_expired_token_is_replaced_by_maintain(vault: VaultEmulator) -> None:
    role_id, secret_id = _approle(vault, "it-expiry", ttl="30s", max_ttl="1h")
    client = client_for(vault)
    manager = VaultTokenManager(
        client, AppRoleLogin(lambda: SecretValue(role_id), lambda: SecretValue(secret_id)), lambda: emulator_now(vault)
    )
    manager.ensure_token()
    old = client.token
    advance(vault, 31)
    assert not manager.is_valid()
    reader = VaultReader(client, token_valid=manager.is_valid)
    with pytest.raises(VaultAuthError):
        reader.current_version(VaultSecretRef("secret", "it/app"), KvVersion.V2)
    manager.maintain()
    assert manager.is_valid() and client.token != old


def test_bad_secret_id_is_an_auth_error(vault: VaultEmulator) -> None:
    role_id, _ = _approle(vault, "it-bad", ttl="60s", max_ttl="1h")
    manager = VaultTokenManager(
        client_for(vault), AppRoleLogin(lambda: SecretValue(role_id), lambda: SecretValue(CANARY_VALUE))
    )
    with pytest.raises(VaultAuthError, match="invalid role or secret ID") as info:
        manager.ensure_token()
    assert_error_clean(info.value)


def test_token_login_with_a_periodic_token(vault: VaultEmulator) -> None:
    token = admin(vault).auth.token.create(policies=["it-read"], ttl="10m", renewable=True)["auth"]["client_token"]
    client = client_for(vault)
    manager = VaultTokenManager(client, TokenLogin(lambda: SecretValue(token)), lambda: emulator_now(vault))
    manager.ensure_token()
    assert client.token == token
    assert manager.expires_at == pytest.approx(emulator_now(vault) + 600, abs=2)
    advance(vault, manager.maintain())
    manager.maintain()
    assert manager.expires_at == pytest.approx(emulator_now(vault) + 600, abs=2)
