"""The Kubernetes auth method: config, roles, login with a service-account JWT.

Behaviour from hashicorp/vault-plugin-auth-kubernetes ``path_login.go``:

- Unknown role: 400 ``invalid role name "<role>"``; missing field: 400 ``missing role|jwt``.
- Claims: legacy tokens carry ``kubernetes.io/serviceaccount/service-account.name``,
  ``.../namespace``, ``.../service-account.uid``, ``.../secret.name``; projected tokens carry
  ``kubernetes.io: {namespace, serviceaccount: {name, uid}}`` (preferred when present).
- ``bound_service_account_names``/``_namespaces`` accept ``*`` and globs; a mismatch is 403
  ``service account name not authorized`` / ``namespace not authorized``.
- ``auth.metadata`` = ``role``, ``service_account_name``, ``service_account_namespace``,
  ``service_account_uid``, ``service_account_secret_name``; display name ``<ns>-<name>``.

Differences from the real server (emulator shortcuts): the JWT signature is NOT verified and no
TokenReview call is made to a Kubernetes API (real Vault asks the API server, which rejects
deleted or expired tokens). Instead the payload is base64url-decoded and ``exp`` is checked
against the emulator clock with ``jwt_leeway_seconds`` of skew (cap/jwt's default leeway is
150 s; UNVERIFIED, hence configurable); an expired token is 403 with go-jose's text.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.auth_backend import ConfiguredAuthBackend
from syncd.devstack.vault.auth_common import TokenSettings
from syncd.devstack.vault.routing import Call
from syncd.devstack.vault.wire import VaultError, parse_bool, string_list

if TYPE_CHECKING:
    from syncd.devstack.vault.state import VaultState

EXPIRED_TOKEN = "go-jose/go-jose/jwt: validation failed, token is expired (exp)"
_CONFIG_FIELDS = (
    "kubernetes_host",
    "kubernetes_ca_cert",
    "token_reviewer_jwt",
    "pem_keys",
    "issuer",
    "disable_iss_validation",
    "disable_local_ca_jwt",
    "use_annotations_as_alias_metadata",
)


@dataclass
class KubernetesRole:
    name: str
    service_account_names: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    audience: str = ""
    alias_name_source: str = "serviceaccount_uid"
    token: TokenSettings = field(default_factory=TokenSettings)

    def describe(self) -> dict[str, Any]:
        described = self.token.describe()
        described.update(
            {
                "bound_service_account_names": list(self.service_account_names),
                "bound_service_account_namespaces": list(self.namespaces),
                "bound_service_account_namespace_selector": "",
                "audience": self.audience,
                "alias_name_source": self.alias_name_source,
            }
        )
        return described


@dataclass(frozen=True)
class ServiceAccount:
    name: str
    namespace: str
    uid: str
    secret_name: str
    expires: float | None


def decode_claims(jwt: str) -> dict[str, Any]:
    """The unverified payload of a compact JWS."""
    parts = jwt.split(".")
    if len(parts) != 3:
        raise VaultError(403, "go-jose/go-jose: compact JWS format must have three parts")
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error) as exc:
        raise VaultError(403, f"failed to decode JWT claims: {exc}") from exc
    if not isinstance(claims, dict):
        raise VaultError(403, "failed to decode JWT claims")
    return claims


def service_account_from(claims: dict[str, Any]) -> ServiceAccount:
    projected = claims.get("kubernetes.io")
    exp = claims.get("exp")
    expires = float(exp) if isinstance(exp, int | float) else None
    if isinstance(projected, dict):
        account = projected.get("serviceaccount") or {}
        return ServiceAccount(
            name=str(account.get("name", "")),
            namespace=str(projected.get("namespace", "")),
            uid=str(account.get("uid", "")),
            secret_name="",
            expires=expires,
        )
    prefix = "kubernetes.io/serviceaccount/"
    return ServiceAccount(
        name=str(claims.get(prefix + "service-account.name", "")),
        namespace=str(claims.get(prefix + "namespace", "")),
        uid=str(claims.get(prefix + "service-account.uid", "")),
        secret_name=str(claims.get(prefix + "secret.name", "")),
        expires=expires,
    )


def _allowed(patterns: list[str], value: str) -> bool:
    return any(pattern == "*" or fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


class KubernetesBackend(ConfiguredAuthBackend[KubernetesRole]):
    mount_type = "kubernetes"

    def __init__(self, state: VaultState, *, jwt_leeway_seconds: float = 150.0) -> None:
        super().__init__(state)
        self.jwt_leeway_seconds = jwt_leeway_seconds

    def describe_config(self, config: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in config.items() if k != "token_reviewer_jwt"}
        shown["token_reviewer_jwt_set"] = bool(config.get("token_reviewer_jwt"))
        return shown

    def parse_config(self, call: Call) -> dict[str, Any]:
        if not call.get("kubernetes_host"):
            raise VaultError(400, "no host provided")
        config = {name: call.get(name) for name in _CONFIG_FIELDS if name in call.data}
        config.setdefault("disable_iss_validation", True)
        config["disable_local_ca_jwt"] = parse_bool(config.get("disable_local_ca_jwt"))
        return config

    def write_role(self, name: str, call: Call) -> None:
        role = self.roles.get(name) or KubernetesRole(name=name)
        if "bound_service_account_names" in call.data:
            role.service_account_names = string_list(call.get("bound_service_account_names"))
        if "bound_service_account_namespaces" in call.data:
            role.namespaces = string_list(call.get("bound_service_account_namespaces"))
        if not role.service_account_names:
            raise VaultError(400, '"bound_service_account_names" can not be empty')
        if not role.namespaces:
            raise VaultError(
                400,
                '"bound_service_account_namespaces" can not be empty if '
                '"bound_service_account_namespace_selector" is not set',
            )
        role.audience = str(call.get("audience", role.audience) or "")
        role.alias_name_source = str(call.get("alias_name_source") or role.alias_name_source)
        role.token.update(call.data)
        self.roles[name] = role

    def login(self, call: Call) -> Response:
        role_name, jwt = call.get("role"), call.get("jwt")
        if not role_name:
            raise VaultError(400, "missing role")
        if not jwt:
            raise VaultError(400, "missing jwt")
        role = self.roles.get(str(role_name).lower())
        if role is None:
            raise VaultError(400, f'invalid role name "{role_name}"')
        if self.config is None:
            raise VaultError(500, "could not load backend configuration")
        account = service_account_from(decode_claims(str(jwt)))
        if account.expires is not None and call.now > account.expires + self.jwt_leeway_seconds:
            raise VaultError(403, EXPIRED_TOKEN)
        any_name = role.service_account_names == ["*"]
        if not any_name and not _allowed(role.service_account_names, account.name):
            raise VaultError(403, "service account name not authorized")
        if not _allowed(role.namespaces, account.namespace):
            raise VaultError(403, "namespace not authorized")
        if not account.uid:
            raise VaultError(500, "could not parse UID from claims")
        metadata = {
            "role": role.name,
            "service_account_name": account.name,
            "service_account_namespace": account.namespace,
            "service_account_secret_name": account.secret_name,
            "service_account_uid": account.uid,
        }
        alias = (
            account.uid if role.alias_name_source != "serviceaccount_name" else (f"{account.namespace}/{account.name}")
        )
        display_name = f"{account.namespace}-{account.name}"
        return self.issue_login(call, role, metadata=metadata, display_name=display_name, alias=alias)
