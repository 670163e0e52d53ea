"""``[vault]``: the address, TLS and login method of the Vault server syncd reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from syncd.config.credentials import CredentialRef
from syncd.config.strict import StrictModel


class VaultTls(StrictModel):
    verify: bool = True
    ca_bundle: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    @model_validator(mode="after")
    def _cert_pair(self) -> VaultTls:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        return self


class TokenAuth(StrictModel):
    method: Literal["token"]
    token: CredentialRef = CredentialRef(env="VAULT_TOKEN")


class AppRoleAuth(StrictModel):
    method: Literal["approle"]
    role_id: str = Field(min_length=1)
    secret_id: CredentialRef
    mount: str = "approle"


class KubernetesAuth(StrictModel):
    method: Literal["kubernetes"]
    role: str = Field(min_length=1)
    token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    mount: str = "kubernetes"


class JwtAuth(StrictModel):
    method: Literal["jwt"]
    role: str = Field(min_length=1)
    token_file: Path
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
