"""``[cloudflare]``: the API, account, credentials, write mode and request budget of Cloudflare.

Without ``[cloudflare.auth]``, syncd uses the API token in ``$CLOUDFLARE_API_TOKEN``, the variable
wrangler and Cloudflare's Terraform provider read (``DEFAULT_CLOUDFLARE_TOKEN_ENV``), just as a
missing ``[vault.auth]`` means ``$VAULT_TOKEN``; ``syncd check`` says when a default is in force.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator

from syncd.config.credentials import CredentialRef
from syncd.config.strict import RuleProblem, StrictModel, must_not_exceed

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
    # Writers in flight at once, each to a different script (never two to one script). At ~1 s per
    # write (a new Worker version each), 8 writers send at most 8 requests/s: a burst of up to the
    # pacer's window budget (1,080 of 1,200 per 5 min) drains in ~2 min, then the pacer holds the
    # account's sustained 4/s. More writers would only spend the 5-minute budget faster and leave
    # the dashboard and other tools on the account nothing; see README "The write path".
    write_concurrency: int = Field(default=8, ge=1, le=64)
    # A script whose writes keep timing out or answering 5xx is left alone for this long, doubling
    # (with jitter) per further failure up to the cap; healthy scripts are not held up by it.
    script_backoff_seconds: float = Field(default=30.0, gt=0)
    script_backoff_max_seconds: float = Field(default=600.0, gt=0)

    @field_validator("account_id")
    @classmethod
    def _account_id(cls, value: str | None) -> str | None:
        return check_account_id(value)

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        yield from must_not_exceed(data, ("script_backoff_seconds", 30.0), ("script_backoff_max_seconds", 600.0))
