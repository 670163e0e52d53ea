"""VaultReader.static_creds against the Vault emulator's database engine, checked against hvac's
``secrets.database.get_static_credentials`` (the independent client): same answer, the rotation
time and the next rotation, an unknown role, and the one capability it needs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import hvac
import pytest

from syncd.clients.vault import VaultReader
from syncd.devstack.vault import VaultEmulator
from syncd.errors import VaultPermissionDenied, VaultSecretNotFound
from syncd.model import VaultSecretRef
from tests.clients.conftest import assert_error_clean
from tests.clients.test_vault_integration import admin, client_for

pytestmark = pytest.mark.integration

PERIOD = 3600


@pytest.fixture(scope="module")
def vault() -> Iterator[VaultEmulator]:
    emulator = VaultEmulator(port=0)
    emulator.start()
    emulator.seed_database_static_role("app", PERIOD)
    try:
        yield emulator
    finally:
        emulator.stop()


def test_the_reader_sees_what_hvac_sees(vault: VaultEmulator) -> None:
    root = admin(vault)
    expected = root.secrets.database.get_static_credentials("app")["data"]
    creds = VaultReader(client_for(vault, vault.root_token)).static_creds("database", "app")
    assert creds.ref == VaultSecretRef("database", "static-creds/app")
    assert creds.data.reveal() == expected  # username, password, last_vault_rotation, rotation_period, ttl
    assert creds.last_vault_rotation == expected["last_vault_rotation"]
    assert creds.rotation_period == PERIOD and creds.ttl == expected["ttl"]
    assert creds.rotated_at is not None
    assert creds.next_rotation == creds.rotated_at.timestamp() + PERIOD
    assert abs(creds.rotated_at.timestamp() - datetime.now(UTC).timestamp()) < 60
    assert repr(creds).count(str(expected["password"])) == 0


def test_an_unknown_role_is_not_found(vault: VaultEmulator) -> None:
    reader = VaultReader(client_for(vault, vault.root_token))
    with pytest.raises(VaultSecretNotFound) as info:
        reader.static_creds("database", "nope")
    assert str(info.value) == "Vault static_creds_read database/static-creds/nope: no such static role"


def test_read_on_static_creds_of_the_role_is_the_capability_needed(vault: VaultEmulator) -> None:
    root: hvac.Client = admin(vault)
    root.sys.create_or_update_acl_policy(
        name="syncd-db", policy='path "database/static-creds/app" { capabilities = ["read"] }'
    )
    allowed = root.auth.token.create(policies=["syncd-db"])["auth"]["client_token"]
    reader = VaultReader(client_for(vault, allowed))
    assert reader.static_creds("database", "app").data.keys() == [
        "last_vault_rotation",
        "password",
        "rotation_period",
        "ttl",
        "username",
    ]
    root.sys.create_or_update_acl_policy(name="other", policy='path "secret/*" { capabilities = ["read"] }')
    denied = root.auth.token.create(policies=["other"])["auth"]["client_token"]
    with pytest.raises(VaultPermissionDenied) as info:
        VaultReader(client_for(vault, denied), token_valid=lambda: True).static_creds("database", "app")
    assert_error_clean(info.value)
