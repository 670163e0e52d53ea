"""The JWT auth method through hvac's ``client.auth.jwt``: config, roles, login and claim checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hvac
import hvac.exceptions
import pytest

from syncd.devstack.vault import VaultEmulator

from .conftest import make_jwt

NOW = 1_760_000_000
ISSUER = "https://ci.example.com"
PUBKEY = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": "vault",
        "sub": "repo:acme/syncd:ref:refs/heads/main",
        "exp": NOW + 600,
        "nbf": NOW - 10,
        "repository": "acme/syncd",
        "environment": "production",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def jwt_mount(root: hvac.Client) -> None:
    root.sys.enable_auth_method("jwt")
    root.auth.jwt.configure(jwt_validation_pubkeys=[PUBKEY], bound_issuer=ISSUER)
    root.auth.jwt.create_role(
        "syncd",
        role_type="jwt",
        bound_audiences=["vault"],
        user_claim="sub",
        bound_subject="repo:acme/syncd:ref:refs/heads/main",
        bound_claims={"repository": "acme/syncd", "environment": ["production", "staging"]},
        claim_mappings={"repository": "repo"},
        token_policies=["syncd-read"],
        token_ttl="20m",
        allowed_redirect_uris=[],
    )


def test_enabled_jwt_method_is_listed_with_its_type(root: hvac.Client) -> None:
    root.sys.enable_auth_method("jwt", path="ci-jwt")

    assert root.sys.list_auth_methods()["data"]["ci-jwt/"]["type"] == "jwt"


def test_config_needs_exactly_one_key_source(root: hvac.Client) -> None:
    root.sys.enable_auth_method("jwt")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="exactly one of"):
        root.auth.jwt.configure(bound_issuer=ISSUER)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="exactly one of"):
        root.auth.jwt.configure(jwt_validation_pubkeys=[PUBKEY], jwks_url="https://ci.example.com/jwks")

    root.auth.jwt.configure(jwt_validation_pubkeys=[PUBKEY], bound_issuer=ISSUER)
    config = root.auth.jwt.read_config()["data"]
    assert config["jwt_validation_pubkeys"] == [PUBKEY]
    assert config["bound_issuer"] == ISSUER


@pytest.mark.usefixtures("jwt_mount")
def test_role_is_read_back_listed_and_deleted(root: hvac.Client) -> None:
    role = root.auth.jwt.read_role("syncd")["data"]

    assert role["role_type"] == "jwt"
    assert role["bound_audiences"] == ["vault"]
    assert role["bound_claims"] == {"repository": "acme/syncd", "environment": ["production", "staging"]}
    assert role["token_policies"] == ["syncd-read"]
    assert role["token_ttl"] == 1200
    assert root.auth.jwt.list_roles()["data"]["keys"] == ["syncd"]
    root.auth.jwt.delete_role("syncd")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.auth.jwt.read_role("syncd")


@pytest.mark.usefixtures("jwt_mount")
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"role_type": "jwt", "user_claim": "sub"}, "at least one bound constraint"),
        ({"role_type": "jwt", "user_claim": "", "bound_audiences": ["vault"]}, "a user claim must be defined"),
        ({"role_type": "saml", "user_claim": "sub", "bound_audiences": ["vault"]}, "invalid 'role_type'"),
    ],
)
def test_role_validation(root: hvac.Client, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(hvac.exceptions.InvalidRequest, match=message):
        root.auth.jwt.create_role("bad", allowed_redirect_uris=[], **fields)


@pytest.mark.usefixtures("jwt_mount")
def test_login_issues_a_token_with_the_role_policies_and_mapped_claims(
    client_for: Callable[[str | None], hvac.Client],
) -> None:
    auth = client_for(None).auth.jwt.jwt_login("syncd", make_jwt(claims()), use_token=False)["auth"]

    assert auth["policies"] == ["default", "syncd-read"]
    assert auth["lease_duration"] == 1200
    assert auth["renewable"] is True
    assert auth["metadata"] == {"role": "syncd", "repo": "acme/syncd"}
    looked_up = client_for(auth["client_token"]).auth.token.lookup_self()["data"]
    assert looked_up["path"] == "auth/jwt/login"


@pytest.mark.usefixtures("jwt_mount")
@pytest.mark.parametrize(
    ("changed", "message"),
    [
        ({"iss": "https://evil.example.com"}, "invalid issuer"),
        ({"aud": "someone-else"}, "audience claim does not match"),
        ({"aud": None}, "audience claim does not match"),
        ({"exp": NOW - 211}, "token is expired"),  # 150 s expiration + 60 s clock-skew leeway
        ({"nbf": NOW + 211}, "not yet valid"),
        ({"sub": "repo:acme/syncd:ref:refs/heads/feature"}, "sub claim does not match bound subject"),
        ({"repository": "acme/other"}, 'claim "repository" does not match'),
        ({"environment": "dev"}, 'claim "environment" does not match'),
        ({"environment": None}, 'claim "environment" does not match'),
    ],
)
def test_login_refuses_tokens_whose_claims_do_not_match(
    client_for: Callable[[str | None], hvac.Client], changed: dict[str, Any], message: str
) -> None:
    with pytest.raises(hvac.exceptions.InvalidRequest, match=message):
        client_for(None).auth.jwt.jwt_login("syncd", make_jwt(claims(**changed)), use_token=False)


@pytest.mark.usefixtures("jwt_mount")
def test_login_within_the_leeways_is_accepted(client_for: Callable[[str | None], hvac.Client]) -> None:
    jwt = make_jwt(claims(exp=NOW - 209, nbf=NOW + 209, environment="staging"))

    auth = client_for(None).auth.jwt.jwt_login("syncd", jwt, use_token=False)["auth"]

    assert auth["client_token"]


@pytest.mark.usefixtures("jwt_mount")
def test_login_expiry_follows_the_emulator_clock(
    vault: VaultEmulator, client_for: Callable[[str | None], hvac.Client]
) -> None:
    jwt = make_jwt(claims())
    client_for(None).auth.jwt.jwt_login("syncd", jwt, use_token=False)

    vault.state.clock.advance(600 + 211)

    with pytest.raises(hvac.exceptions.InvalidRequest, match="token is expired"):
        client_for(None).auth.jwt.jwt_login("syncd", jwt, use_token=False)


@pytest.mark.usefixtures("jwt_mount")
@pytest.mark.parametrize(
    ("role", "jwt", "message"),
    [
        ("nobody", make_jwt(claims()), 'role "nobody" could not be found'),
        ("syncd", "not-a-jwt", "malformed JWT"),
        ("syncd", make_jwt(claims()).split(".", 1)[0] + ".!!!.sig", "failed to decode"),
    ],
)
def test_login_with_unknown_role_or_malformed_token_is_400(
    client_for: Callable[[str | None], hvac.Client], role: str, jwt: str, message: str
) -> None:
    with pytest.raises(hvac.exceptions.InvalidRequest, match=message):
        client_for(None).auth.jwt.jwt_login(role, jwt, use_token=False)


@pytest.mark.usefixtures("jwt_mount")
def test_login_refuses_an_unsigned_token(client_for: Callable[[str | None], hvac.Client]) -> None:
    signed = make_jwt(claims())
    unsigned_header = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    unsigned = unsigned_header + "." + signed.split(".")[1] + "."

    with pytest.raises(hvac.exceptions.InvalidRequest, match="unsupported signing algorithm"):
        client_for(None).auth.jwt.jwt_login("syncd", unsigned, use_token=False)


def test_oidc_role_cannot_log_in_with_a_jwt(root: hvac.Client, client_for: Callable[[str | None], hvac.Client]) -> None:
    root.sys.enable_auth_method("jwt")
    root.auth.jwt.configure(jwks_url="https://ci.example.com/jwks")
    root.auth.jwt.create_role(
        "browser", user_claim="sub", allowed_redirect_uris=["https://x.example.com/cb"], role_type="oidc"
    )

    with pytest.raises(hvac.exceptions.InvalidRequest, match="oidc role_type is not allowed"):
        client_for(None).auth.jwt.jwt_login("browser", make_jwt(claims(aud=None)), use_token=False)


def test_glob_bound_claims_and_no_audience(root: hvac.Client, client_for: Callable[[str | None], hvac.Client]) -> None:
    root.sys.enable_auth_method("jwt")
    root.auth.jwt.configure(jwt_validation_pubkeys=[PUBKEY])
    root.auth.jwt.create_role(
        "any-branch",
        role_type="jwt",
        user_claim="repository",
        bound_claims={"sub": "repo:acme/syncd:*"},
        bound_claims_type="glob",
        allowed_redirect_uris=[],
    )
    login = client_for(None).auth.jwt.jwt_login

    jwt = make_jwt(claims(aud=None, sub="repo:acme/syncd:ref:refs/heads/x"))
    auth = login("any-branch", jwt, use_token=False)["auth"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="no audiences bound to the role"):
        login("any-branch", make_jwt(claims()), use_token=False)

    assert auth["metadata"] == {"role": "any-branch"}
