"""The JWT auth method (``sys/auth`` type ``jwt``): config, roles, login with a signed JWT.

Behaviour from hashicorp/vault-plugin-auth-jwt (``path_config.go``, ``path_role.go``,
``path_login.go``) and hashicorp/cap ``jwt`` (claim validation):

- ``config``: exactly one key source (``jwt_validation_pubkeys``, ``jwks_url`` or
  ``oidc_discovery_url``), else 400; ``bound_issuer``, ``default_role``, ``jwt_supported_algs``.
- ``role/<name>``: ``role_type`` ``jwt`` (the plugin's default is ``oidc``, which cannot log in
  with a JWT); ``user_claim`` is required; a ``jwt`` role needs at least one bound constraint
  (``bound_audiences``, ``bound_subject`` or ``bound_claims``); ``bound_claims_type`` ``string``
  (exact match) or ``glob``; ``claim_mappings`` copy claims into ``auth.metadata``; the
  ``token_*`` fields of every auth method; leeways ``clock_skew_leeway`` (60 s),
  ``expiration_leeway`` (150 s), ``not_before_leeway`` (150 s).
- ``login`` ``{role, jwt}`` (``role`` may be omitted with a ``default_role``): ``iss`` must equal
  ``bound_issuer``; ``aud`` must hold one of ``bound_audiences`` (an ``aud`` with no audiences
  bound is refused too); ``exp``/``nbf`` against the emulator clock with the leeways; ``sub``
  must equal ``bound_subject``; each ``bound_claims`` key must match; ``user_claim`` must be
  present. Failures are 400 ``error validating token: ...`` / ``error validating claims: ...``.
  ``auth.metadata`` = ``{"role": name}`` plus the mapped claims; the alias is the user claim.

Difference from the real server (emulator shortcut): the signature is NOT verified (no crypto
library is a dependency): the header must name an algorithm other than ``none`` and the payload is
base64url-decoded. Real Vault verifies the signature with the configured keys (or JWKS / OIDC
discovery), so a token the emulator accepts may still be refused by Vault.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from dataclasses import dataclass, field
from typing import Any

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.auth_backend import ConfiguredAuthBackend
from syncd.devstack.vault.auth_common import TokenSettings
from syncd.devstack.vault.routing import Call
from syncd.devstack.vault.wire import VaultError, parse_duration, string_list

KEY_SOURCES = ("jwt_validation_pubkeys", "jwks_url", "oidc_discovery_url")
_CONFIG_FIELDS = (*KEY_SOURCES, "bound_issuer", "default_role", "jwt_supported_algs", "jwks_ca_pem")
ROLE_TYPES = ("jwt", "oidc")
BOUND_CLAIMS_TYPES = ("string", "glob")


@dataclass
class JwtRole:
    name: str
    role_type: str = "oidc"
    user_claim: str = ""
    bound_audiences: list[str] = field(default_factory=list)
    bound_subject: str = ""
    bound_claims: dict[str, Any] = field(default_factory=dict)
    bound_claims_type: str = "string"
    claim_mappings: dict[str, str] = field(default_factory=dict)
    clock_skew_leeway: int = 60
    expiration_leeway: int = 150
    not_before_leeway: int = 150
    token: TokenSettings = field(default_factory=TokenSettings)

    def describe(self) -> dict[str, Any]:
        described = self.token.describe()
        described.update(
            {
                "role_type": self.role_type,
                "user_claim": self.user_claim,
                "bound_audiences": list(self.bound_audiences),
                "bound_subject": self.bound_subject,
                "bound_claims": dict(self.bound_claims) or None,
                "bound_claims_type": self.bound_claims_type,
                "claim_mappings": dict(self.claim_mappings) or None,
                "clock_skew_leeway": self.clock_skew_leeway,
                "expiration_leeway": self.expiration_leeway,
                "not_before_leeway": self.not_before_leeway,
                "groups_claim": "",
                "allowed_redirect_uris": [],
            }
        )
        return described

    def update(self, data: dict[str, Any]) -> None:
        if "role_type" in data:
            self.role_type = str(data["role_type"] or "oidc")
        if self.role_type not in ROLE_TYPES:
            raise VaultError(400, f"invalid 'role_type': {self.role_type}")
        if "user_claim" in data:
            self.user_claim = str(data["user_claim"] or "")
        if "bound_audiences" in data:
            self.bound_audiences = string_list(data["bound_audiences"])
        if "bound_subject" in data:
            self.bound_subject = str(data["bound_subject"] or "")
        if "bound_claims" in data:
            self.bound_claims = _object(data["bound_claims"], "bound_claims")
        if "bound_claims_type" in data:
            self.bound_claims_type = str(data["bound_claims_type"] or "string")
        if self.bound_claims_type not in BOUND_CLAIMS_TYPES:
            raise VaultError(400, f"invalid 'bound_claims_type': {self.bound_claims_type}")
        if "claim_mappings" in data:
            self.claim_mappings = {str(k): str(v) for k, v in _object(data["claim_mappings"], "claim_mappings").items()}
        for name in ("clock_skew_leeway", "expiration_leeway", "not_before_leeway"):
            if name in data:
                setattr(self, name, parse_duration(data[name], name))
        self.token.update(data)
        if not self.user_claim:
            raise VaultError(400, "a user claim must be defined on the role")
        constrained = self.bound_audiences or self.bound_subject or self.bound_claims
        if self.role_type == "jwt" and not constrained:
            raise VaultError(400, "must have at least one bound constraint when creating/updating a role")


def _object(value: Any, name: str) -> dict[str, Any]:
    if isinstance(value, str) and value:
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise VaultError(400, f"error parsing {name}: {exc}") from exc
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise VaultError(400, f"{name} must be a map")
    return value


def _b64json(part: str, what: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise VaultError(400, f"error validating token: failed to decode {what}: {exc}") from exc


def decode_unverified(jwt: str) -> dict[str, Any]:
    """The payload of a compact JWS whose header names a signing algorithm (not verified)."""
    parts = jwt.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise VaultError(400, "error validating token: malformed JWT: expected three parts")
    header = _b64json(parts[0], "header")
    if not isinstance(header, dict) or str(header.get("alg", "none")).lower() == "none":
        raise VaultError(400, "error validating token: unsupported signing algorithm")
    claims = _b64json(parts[1], "claims")
    if not isinstance(claims, dict):
        raise VaultError(400, "error validating token: claims are not an object")
    return claims


def _matches(expected: Any, actual: Any, glob: bool) -> bool:
    wanted = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
    found = [str(v) for v in (actual if isinstance(actual, list) else [actual])]
    if glob:
        return any(fnmatch.fnmatchcase(f, w) for f in found for w in wanted)
    return any(f in wanted for f in found)


class JwtBackend(ConfiguredAuthBackend[JwtRole]):
    mount_type = "jwt"

    def describe_config(self, config: dict[str, Any]) -> dict[str, Any]:
        shown = {name: config.get(name, "") for name in _CONFIG_FIELDS}
        shown["jwt_validation_pubkeys"] = list(config.get("jwt_validation_pubkeys") or [])
        return shown

    def parse_config(self, call: Call) -> dict[str, Any]:
        config = {name: call.get(name) for name in _CONFIG_FIELDS if call.get(name)}
        if "jwt_validation_pubkeys" in config:
            config["jwt_validation_pubkeys"] = string_list(config["jwt_validation_pubkeys"])
        if sum(1 for name in KEY_SOURCES if config.get(name)) != 1:
            raise VaultError(
                400, "exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set"
            )
        return config

    def write_role(self, name: str, call: Call) -> None:
        existing = self.roles.get(name)
        role = JwtRole(name=name) if existing is None else existing
        role.update(call.data)
        self.roles[name] = role

    def login(self, call: Call) -> Response:
        jwt = call.get("jwt")
        if not jwt:
            raise VaultError(400, "missing token")
        if self.config is None:
            raise VaultError(400, "could not load configuration")
        role_name = call.get("role") or self.config.get("default_role")
        if not role_name:
            raise VaultError(400, "missing role")
        role = self.roles.get(str(role_name).lower())
        if role is None:
            raise VaultError(400, f'role "{role_name}" could not be found')
        if role.role_type == "oidc":
            raise VaultError(400, "role with oidc role_type is not allowed")
        claims = decode_unverified(str(jwt))
        self._validate(role, claims, call.now)
        user = claims.get(role.user_claim)
        if user is None or user == "":
            raise VaultError(400, f'claim "{role.user_claim}" not found in token')
        metadata = {"role": role.name}
        for claim, key in role.claim_mappings.items():
            if claim in claims:
                metadata[key] = str(claims[claim])
        return self.issue_login(call, role, metadata=metadata, display_name=str(user), alias=str(user))

    def _validate(self, role: JwtRole, claims: dict[str, Any], now: float) -> None:
        assert self.config is not None
        issuer = self.config.get("bound_issuer")
        if issuer and claims.get("iss") != issuer:
            raise VaultError(400, "error validating token: invalid issuer (iss) claim")
        audience = claims.get("aud")
        if role.bound_audiences:
            if audience is None or not _matches(role.bound_audiences, audience, glob=False):
                raise VaultError(
                    400,
                    "error validating token: invalid audience (aud) claim: "
                    "audience claim does not match any expected audience",
                )
        elif audience is not None:
            raise VaultError(
                400,
                "error validating token: invalid audience (aud) claim: "
                "audience claim found in JWT but no audiences bound to the role",
            )
        expires, not_before = claims.get("exp"), claims.get("nbf")
        if isinstance(expires, int | float) and now > expires + role.expiration_leeway + role.clock_skew_leeway:
            raise VaultError(400, "error validating token: invalid expiration time (exp) claim: token is expired")
        if isinstance(not_before, int | float) and now < not_before - role.not_before_leeway - role.clock_skew_leeway:
            raise VaultError(400, "error validating token: invalid not before (nbf) claim: token not yet valid")
        if role.bound_subject and claims.get("sub") != role.bound_subject:
            raise VaultError(400, "sub claim does not match bound subject")
        for claim, expected in role.bound_claims.items():
            if claim not in claims or not _matches(expected, claims[claim], role.bound_claims_type == "glob"):
                raise VaultError(
                    400, f'error validating claims: claim "{claim}" does not match any associated bound claim values'
                )
