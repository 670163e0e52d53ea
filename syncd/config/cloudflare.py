"""``[cloudflare]``: the API, account, credentials, write mode and request budget of Cloudflare.

Without ``[cloudflare.auth]``, syncd uses the API token in ``$CLOUDFLARE_API_TOKEN``, the variable
wrangler and Cloudflare's Terraform provider read (``DEFAULT_CLOUDFLARE_TOKEN_ENV``), just as a
missing ``[vault.auth]`` means ``$VAULT_TOKEN``; ``syncd check`` says when a default is in force.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator

from syncd.config.credentials import CredentialRef
from syncd.config.strict import StrictModel

DEFAULT_CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"
MAX_BULK_SECRETS = 100
DEFAULT_CLOUDFLARE_TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
_ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")


def check_account_id(value: str | None) -> str | None:
    """A Cloudflare account id (32 lowercase hex characters) or None; shared by the mapping targets."""
    if value is not None and not _ACCOUNT_ID.match(value):
        raise ValueError("must be 32 lowercase hex characters")
    return value


class CloudflareApiToken(StrictModel):
    api_token: CredentialRef


class CloudflareGlobalKey(StrictModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    global_key: CredentialRef


def _cloudflare_auth_kind(raw: Any) -> str:
    if isinstance(raw, CloudflareGlobalKey) or (isinstance(raw, dict) and "api_token" not in raw and "email" in raw):
        return "global_key"
    return "api_token"


CloudflareAuth = Annotated[
    Annotated[CloudflareApiToken, Tag("api_token")] | Annotated[CloudflareGlobalKey, Tag("global_key")],
    Discriminator(_cloudflare_auth_kind),
]


class CloudflareSettings(StrictModel):
    api_base: str = Field(default=DEFAULT_CLOUDFLARE_API, pattern=r"^https?://")
    account_id: str | None = None
    auth: CloudflareAuth = CloudflareApiToken(api_token=CredentialRef(env=DEFAULT_CLOUDFLARE_TOKEN_ENV))
    allow_inline_credentials: bool = False
    timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    write_mode: Literal["bulk", "single"] = "bulk"
    rate_limit_requests: int = Field(default=1200, ge=1)
    rate_limit_window_seconds: float = Field(default=300.0, gt=0)
    retry_attempts: int = Field(default=5, ge=1, le=20)

    @field_validator("account_id")
    @classmethod
    def _account_id(cls, value: str | None) -> str | None:
        return check_account_id(value)
