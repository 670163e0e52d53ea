"""A token Vault refuses as invalid is reported as an auth error and makes the manager log in again."""

from __future__ import annotations

from collections.abc import Iterator

import hvac
import pytest

from syncd.clients.vault import VaultReader, build_hvac_client
from syncd.devstack.vault import VaultEmulator
from syncd.errors import VaultAuthError, VaultPermissionDenied
from syncd.model import KvVersion, VaultSecretRef


@pytest.fixture
def vault() -> Iterator[VaultEmulator]:
    with VaultEmulator() as emulator:
        hvac.Client(url=emulator.url, token=emulator.root_token).secrets.kv.v2.create_or_update_secret(
            path="app", secret={"k": "v"}
        )
        yield emulator


def _reader(vault: VaultEmulator, token: str, refused: list[int]) -> VaultReader:
    client = build_hvac_client(vault.url, namespace=None, timeout=5, verify=True, client_cert=None, pool_size=2)
    client.token = token
    return VaultReader(client, retry_attempts=1, token_valid=lambda: True, on_token_refused=lambda: refused.append(1))


def test_revoked_token_is_an_auth_error_and_invalidates(vault: VaultEmulator) -> None:
    root = hvac.Client(url=vault.url, token=vault.root_token)
    token = root.auth.token.create(policies=["root"])["auth"]["client_token"]
    refused: list[int] = []
    reader = _reader(vault, token, refused)
    assert reader.current_version(VaultSecretRef("secret", "app"), KvVersion.V2).version == 1
    root.auth.token.revoke(token)
    with pytest.raises(VaultAuthError):
        reader.current_version(VaultSecretRef("secret", "app"), KvVersion.V2)
    assert refused == [1]


def test_policy_denial_is_not_a_token_refusal(vault: VaultEmulator) -> None:
    root = hvac.Client(url=vault.url, token=vault.root_token)
    root.sys.create_or_update_acl_policy(name="other", policy='path "secret/data/other" { capabilities = ["read"] }')
    token = root.auth.token.create(policies=["other"])["auth"]["client_token"]
    refused: list[int] = []
    reader = _reader(vault, token, refused)
    with pytest.raises(VaultPermissionDenied) as caught:
        reader.current_version(VaultSecretRef("secret", "app"), KvVersion.V2)
    assert not isinstance(caught.value, VaultAuthError)
    assert refused == []
