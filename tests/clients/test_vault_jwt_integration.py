"""``JwtLogin`` with ``VaultTokenManager`` and ``VaultReader`` against the emulator's JWT auth method."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import hvac
import pytest
from structlog.testing import capture_logs

from syncd.clients.vault import VaultReader, build_hvac_client
from syncd.clients.vault_auth import JwtLogin, VaultTokenManager
from syncd.devstack.vault import VaultEmulator
from syncd.errors import VaultAuthError
from syncd.model import KvVersion, SecretValue, VaultSecretRef
from tests.clients.conftest import CANARY_VALUE, FakeTime, assert_error_clean

REF = VaultSecretRef("secret", "jwt/app")
ISSUER = "https://ci.example.com"
PUBKEY = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
SIGNATURE_CANARY = "Y2FuYXJ5LWp3dC1zaWduYXR1cmU"  # the part of a JWT that makes it a credential


@pytest.fixture(scope="module")
def vault() -> Iterator[VaultEmulator]:
    emulator = VaultEmulator(port=0)
    emulator.start()
    root = hvac.Client(url=emulator.url, token=emulator.root_token)
    root.sys.create_or_update_policy("jwt-read", 'path "secret/*" { capabilities = ["read"] }')
    root.secrets.kv.v2.create_or_update_secret(path=REF.path, secret={"API_KEY": CANARY_VALUE}, mount_point="secret")
    root.sys.enable_auth_method("jwt", path="ci")
    root.auth.jwt.configure(jwt_validation_pubkeys=[PUBKEY], bound_issuer=ISSUER, path="ci")
    root.auth.jwt.create_role(
        "syncd",
        user_claim="sub",
        allowed_redirect_uris=[],
        role_type="jwt",
        bound_audiences=["vault"],
        bound_claims={"repository": "acme/syncd"},
        token_policies=["jwt-read"],
        token_ttl="15m",
        path="ci",
    )
    try:
        yield emulator
    finally:
        emulator.stop()


def make_jwt(**overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": "vault",
        "sub": "repo:acme/syncd:ref:refs/heads/main",
        "repository": "acme/syncd",
        "exp": int(time.time()) + 600,
    }
    claims.update(overrides)

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part(claims)}.{SIGNATURE_CANARY}"


def rig(vault: VaultEmulator, jwt: list[str], fake_time: FakeTime) -> tuple[Any, VaultTokenManager, VaultReader]:
    client = build_hvac_client(vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=2)
    login = JwtLogin("syncd", lambda: SecretValue(jwt[0]), mount_point="ci")
    tokens = VaultTokenManager(client, login, fake_time.clock, rng=lambda: 0.5, retry_attempts=1)
    return client, tokens, VaultReader(client, retry_attempts=1, token_valid=tokens.is_valid)


def test_jwt_login_gets_a_token_that_reads_secrets(vault: VaultEmulator, fake_time: FakeTime) -> None:
    client, tokens, reader = rig(vault, [make_jwt()], fake_time)
    with capture_logs() as logs:
        tokens.ensure_token()

    assert tokens.expires_at == pytest.approx(fake_time.now + 900)
    assert reader.read(REF, KvVersion.V2, None).data.reveal() == {"API_KEY": CANARY_VALUE}
    looked_up = client.auth.token.lookup_self()["data"]
    assert looked_up["path"] == "auth/ci/login" and "jwt-read" in looked_up["policies"]
    assert SIGNATURE_CANARY not in repr(logs) and client.token not in repr(logs)


@pytest.mark.parametrize(
    "overrides",
    [{"aud": "someone-else"}, {"repository": "acme/other"}, {"iss": "https://evil.example.com"}, {"exp": 1}],
)
def test_refused_jwt_is_an_auth_error_without_the_jwt(
    vault: VaultEmulator, fake_time: FakeTime, overrides: dict[str, Any]
) -> None:
    _, tokens, _ = rig(vault, [make_jwt(**overrides)], fake_time)

    with pytest.raises(VaultAuthError) as refused:
        tokens.ensure_token()

    assert refused.value.status == 400
    assert SIGNATURE_CANARY not in f"{refused.value!s} {refused.value!r}"
    assert_error_clean(refused.value)
    assert not tokens.is_valid()


def test_the_next_login_uses_the_refreshed_jwt(vault: VaultEmulator, fake_time: FakeTime) -> None:
    jwt = [make_jwt(repository="acme/other")]  # a JWT the role refuses ...
    _, tokens, reader = rig(vault, jwt, fake_time)
    with pytest.raises(VaultAuthError):
        tokens.ensure_token()

    jwt[0] = make_jwt()  # ... then the CI system hands out a fresh, matching one
    tokens.ensure_token()

    assert tokens.is_valid()
    assert reader.read(REF, KvVersion.V2, None).data.reveal()["API_KEY"] == CANARY_VALUE
