"""A rotated Vault token file takes effect without a restart (``method = "token"``).

The token manager and the reader run against the Vault emulator over real HTTP; the manager's
schedule runs on fake time. The token file is rotated the way Kubernetes does it (a new file
moved over the old one), and the old token is revoked with ``auth/token/revoke``, so a read that
still used it would be refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest
from structlog.testing import capture_logs

from syncd.app.credentials import FileCredential
from syncd.clients.vault import VaultReader, build_hvac_client
from syncd.clients.vault_auth import TokenLogin, VaultTokenManager
from syncd.devstack.vault import VaultEmulator
from syncd.errors import VaultAuthError
from syncd.model import KvVersion, SecretValue, VaultSecretRef
from tests.clients.conftest import CANARY_VALUE, FakeTime

REF = VaultSecretRef("secret", "rotation/app")
POLICY = "rotation-read"


@pytest.fixture(scope="module")
def vault() -> Iterator[VaultEmulator]:
    emulator = VaultEmulator(port=0)
    emulator.start()
    root = hvac.Client(url=emulator.url, token=emulator.root_token)
    root.sys.create_or_update_policy(POLICY, 'path "secret/*" { capabilities = ["read"] }')
    root.secrets.kv.v2.create_or_update_secret(path=REF.path, secret={"API_KEY": CANARY_VALUE}, mount_point="secret")
    try:
        yield emulator
    finally:
        emulator.stop()


def root(vault: VaultEmulator) -> Any:
    return hvac.Client(url=vault.url, token=vault.root_token)


def new_token(vault: VaultEmulator, *, expiring: bool = True) -> str:
    """A read token with a lease (``expiring``) or, as root-policy tokens are, without one."""
    kwargs: dict[str, Any] = {"policies": [POLICY], "ttl": "1h"} if expiring else {"policies": ["root"]}
    return str(root(vault).auth.token.create(**kwargs)["auth"]["client_token"])


def revoke(vault: VaultEmulator, token: str) -> None:
    root(vault).auth.token.revoke(token)


def rotate_file(path: Path, token: str) -> None:
    """Write the new token next to the file and move it over (a new inode, as Kubernetes does)."""
    staging = path.with_suffix(".new")
    staging.write_text(token + "\n")
    os.replace(staging, path)


class Rig:
    """A token file, the manager logging in with it, and a reader sharing the manager's client."""

    def __init__(self, vault: VaultEmulator, path: Path, token: str, fake_time: FakeTime) -> None:
        path.write_text(token + "\n")
        self.path = path
        self.client = build_hvac_client(
            vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=2
        )
        self.login = TokenLogin(FileCredential(path, key="vault.auth.token"))
        self.tokens = VaultTokenManager(self.client, self.login, fake_time.clock, rng=lambda: 0.5)
        self.reader = VaultReader(self.client, retry_attempts=1, token_valid=self.tokens.is_valid)

    def read(self) -> Any:
        return self.reader.read(REF, KvVersion.V2, None).data.reveal()["API_KEY"]


@pytest.fixture
def rig_factory(vault: VaultEmulator, tmp_path: Path, fake_time: FakeTime) -> Any:
    def make(token: str) -> Rig:
        return Rig(vault, tmp_path / "vault-token", token, fake_time)

    return make


def test_rotated_token_file_is_used_by_the_next_ensure_token_and_read(vault: VaultEmulator, rig_factory: Any) -> None:
    old, new = new_token(vault), new_token(vault)
    rig: Rig = rig_factory(old)
    rig.tokens.ensure_token()
    assert rig.read() == CANARY_VALUE and rig.client.token == old

    rotate_file(rig.path, new)
    revoke(vault, old)
    with capture_logs() as logs:
        rig.tokens.ensure_token()

    assert rig.client.token == new
    assert rig.read() == CANARY_VALUE  # the old token is revoked: this read went out with the new one
    assert [e["event"] for e in logs] == ["vault_token_credential_changed", "vault_login"]
    assert not any(token in repr(logs) for token in (old, new))


def test_unchanged_token_file_does_not_log_in_again(vault: VaultEmulator, rig_factory: Any) -> None:
    rig: Rig = rig_factory(new_token(vault))
    rig.tokens.ensure_token()
    with capture_logs() as logs:
        rig.tokens.ensure_token()
        rig.tokens.maintain()

    assert [e["event"] for e in logs] == []


def test_maintain_picks_up_a_rotated_non_expiring_token_within_a_minute(
    vault: VaultEmulator, rig_factory: Any, fake_time: FakeTime
) -> None:
    old, new = new_token(vault, expiring=False), new_token(vault, expiring=False)
    rig: Rig = rig_factory(old)
    rig.tokens.ensure_token()
    assert rig.tokens.expires_at is None
    first_delay = rig.tokens.maintain()
    assert first_delay == 60.0

    rotate_file(rig.path, new)
    revoke(vault, old)
    fake_time.advance(first_delay)
    next_delay = rig.tokens.maintain()

    assert rig.client.token == new and rig.tokens.last_error is None
    assert next_delay == 60.0
    assert rig.read() == CANARY_VALUE


def test_maintain_picks_up_a_rotated_expiring_token_before_its_renewal(vault: VaultEmulator, rig_factory: Any) -> None:
    old, new = new_token(vault), new_token(vault)
    rig: Rig = rig_factory(old)
    rig.tokens.ensure_token()
    rotate_file(rig.path, new)
    revoke(vault, old)

    rig.tokens.maintain()  # long before the old token's renewal is due

    assert rig.client.token == new
    assert rig.read() == CANARY_VALUE


def test_invalidate_after_a_refusal_makes_the_next_ensure_token_log_in(vault: VaultEmulator, rig_factory: Any) -> None:
    old, new = new_token(vault), new_token(vault)
    rig: Rig = rig_factory(old)
    rig.tokens.ensure_token()
    revoke(vault, old)  # revoked before the file is rotated
    with pytest.raises(VaultAuthError):  # Vault calls the token invalid: an auth error, not a policy denial
        rig.read()
    rig.tokens.invalidate()  # what the wiring's on_token_refused hook does

    assert not rig.tokens.is_valid()
    with pytest.raises(VaultAuthError):  # the reader now blames the token, not a policy
        rig.read()
    with pytest.raises(VaultAuthError):  # logging in again with the revoked token is refused
        rig.tokens.ensure_token()
    rotate_file(rig.path, new)
    rig.tokens.ensure_token()
    assert rig.tokens.is_valid() and rig.client.token == new
    assert rig.read() == CANARY_VALUE


def test_a_refused_rotated_token_keeps_the_working_one_and_is_retried(vault: VaultEmulator, rig_factory: Any) -> None:
    good, bad, fixed = new_token(vault), new_token(vault), new_token(vault)
    revoke(vault, bad)
    rig: Rig = rig_factory(good)
    rig.tokens.ensure_token()

    rotate_file(rig.path, bad)
    for _ in range(2):  # every cycle tries the file again, and reports the refusal
        with pytest.raises(VaultAuthError) as refused:
            rig.tokens.ensure_token()
        assert bad not in str(refused.value) and good not in str(refused.value)
        assert rig.client.token == good and rig.tokens.is_valid()
        assert rig.read() == CANARY_VALUE
    rotate_file(rig.path, fixed)
    rig.tokens.ensure_token()

    assert rig.client.token == fixed


def test_an_unreadable_token_file_keeps_the_installed_token(vault: VaultEmulator, rig_factory: Any) -> None:
    token = new_token(vault)
    rig: Rig = rig_factory(token)
    rig.tokens.ensure_token()
    rig.path.unlink()

    rig.tokens.ensure_token()
    delay = rig.tokens.maintain()

    assert rig.client.token == token and rig.tokens.last_error is None and delay > 0
    assert rig.read() == CANARY_VALUE


def test_credential_changed_is_false_before_the_first_login() -> None:
    login = TokenLogin(lambda: SecretValue("never-used"))

    assert login.credential_changed() is False
