"""``[vault]``: the address, TLS and login method of the Vault server syncd reads.

Without ``[vault.auth]``, syncd logs in with the token in ``$VAULT_TOKEN``, as the ``vault`` CLI
does (``DEFAULT_VAULT_TOKEN_ENV``); ``syncd check`` says when that default is in force.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from syncd.config.credentials import CredentialRef
from syncd.config.strict import ConfigPath, RuleProblem, StrictModel

DEFAULT_VAULT_TOKEN_ENV = "VAULT_TOKEN"


class VaultTls(StrictModel):
    verify: bool = True
    ca_bundle: ConfigPath | None = None
    client_cert: ConfigPath | None = None
    client_key: ConfigPath | None = None

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        if ("client_cert" in data) != ("client_key" in data):
            yield (), "client_cert and client_key go together"
        if data.get("verify") is False and data.get("ca_bundle") is not None:
            yield ("verify",), "verify = false would ignore ca_bundle: remove verify = false to verify with the bundle"


class TokenAuth(StrictModel):
    method: Literal["token"]
    token: CredentialRef = CredentialRef(env=DEFAULT_VAULT_TOKEN_ENV)


class AppRoleAuth(StrictModel):
    method: Literal["approle"]
    role_id: str = Field(min_length=1)
    secret_id: CredentialRef
    mount: str = "approle"


class KubernetesAuth(StrictModel):
    method: Literal["kubernetes"]
    role: str = Field(min_length=1)
    token_file: ConfigPath = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    mount: str = "kubernetes"


class JwtAuth(StrictModel):
    method: Literal["jwt"]
    role: str = Field(min_length=1)
    token_file: ConfigPath
    mount: str = "jwt"


VaultAuth = Annotated[TokenAuth | AppRoleAuth | KubernetesAuth | JwtAuth, Field(discriminator="method")]


class VaultSettings(StrictModel):
    address: str = Field(pattern=r"^https?://")
    namespace: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    concurrency: int = Field(default=8, ge=1, le=64)
    tls: VaultTls = VaultTls()
    auth: VaultAuth = TokenAuth(method="token")
    allow_inline_credentials: bool = False
