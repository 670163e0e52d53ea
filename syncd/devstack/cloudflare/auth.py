"""Credentials: API tokens (``Authorization: Bearer``) and legacy global keys (``X-Auth-Email`` +
``X-Auth-Key``), and what each may do.

- No credentials at all: 9106 "Missing X-Auth-Key, X-Auth-Email or Authorization headers"
  (status ``missing_credentials_status``, 400 as probed on the live API); only one of the
  legacy pair: 9106 "Missing X-Auth-Email header" / "Missing X-Auth-Key header" (403).
- An ``Authorization`` header that is not ``Bearer <b64token>``: 400, 6003 "Invalid request
  headers" with error_chain 6111 "Invalid format for Authorization header"; a malformed
  ``X-Auth-Key``: the same with 6103 "Invalid format for X-Auth-Key header".
- A well-formed but unknown token: 9109 "Invalid access token" (``invalid_token_status``, 403);
  an unknown email/key pair: 9103 "Unknown X-Auth-Key or X-Auth-Email" (403).
- A known credential without the needed permission, or for another account: 10000
  "Authentication error" (403).
- Token verify endpoints: an unknown token is 1000 "Invalid API Token" (401). User tokens are
  verified at ``/user/tokens/verify``, account-owned tokens at ``/accounts/{id}/tokens/verify``.
- ``GET /user`` (User Details): a global key answers for its email; a user token (one without an
  account) answers for the emulator's one user (``DEFAULT_USER_EMAIL``); an account-owned token
  is 10000 "Authentication error" (403; UNVERIFIED: account-owned tokens have no user).
- A revoked token (``revoke_token``) is unknown from then on: 9109 on every endpoint.
"""

from __future__ import annotations

import hashlib
import re
import secrets as random_tokens
import threading
from dataclasses import dataclass

from syncd.devstack.cloudflare.config import EmulatorConfig
from syncd.devstack.cloudflare.envelope import (
    AUTHENTICATION_ERROR,
    INVALID_ACCESS_TOKEN,
    INVALID_API_TOKEN,
    INVALID_AUTHORIZATION_FORMAT,
    INVALID_REQUEST_HEADERS,
    INVALID_X_AUTH_KEY_FORMAT,
    MISSING_CREDENTIALS,
    UNKNOWN_GLOBAL_KEY,
    ApiError,
)
from syncd.devstack.httpkit import Request

PERMISSIONS = ("read", "write")
BEARER_RE = re.compile(r"^Bearer ([A-Za-z0-9\-._~+/]+=*)$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
GLOBAL_KEY_RE = re.compile(r"^[A-Za-z0-9]+$")
DEFAULT_USER_EMAIL = "devstack@example.com"


def user_id_of(email: str) -> str:
    """A stable 32-hex-digit user identifier per email, like the real API's user ids."""
    return hashlib.sha256(email.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the rate-limit bucket, the permission and the account scope."""

    bucket: str
    permission: str
    account_id: str | None  # None: every account (a user token or a global key)
    token_id: str | None = None
    email: str | None = None  # the user behind a global key or a user token

    def may(self, needed: str) -> bool:
        return self.permission == "write" or needed == "read"


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    permission: str
    account_id: str | None


class CredentialRegistry:
    """Known tokens and global keys. Thread-safe through the emulator's lock."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.tokens: dict[str, TokenRecord] = {}
        self.global_keys: dict[str, str] = {}

    def create_token(self, permission: str = "write", token: str | None = None, account_id: str | None = None) -> str:
        if permission not in PERMISSIONS:
            raise ValueError(f"permission must be one of {PERMISSIONS}")
        value = token or random_tokens.token_urlsafe(30)
        if not TOKEN_RE.match(value):
            raise ValueError("a token may only hold the characters of an RFC 6750 b64token")
        with self.lock:
            self.tokens[value] = TokenRecord(random_tokens.token_hex(16), permission, account_id)
        return value

    def revoke_token(self, token: str) -> None:
        """Forget ``token``: it is unknown from the next request on. ``KeyError`` if not known."""
        with self.lock:
            if self.tokens.pop(token, None) is None:
                raise KeyError("no such token")

    def add_global_key(self, email: str, key: str) -> None:
        if not email or not GLOBAL_KEY_RE.match(key):
            raise ValueError("a global key needs an email and an alphanumeric key")
        with self.lock:
            self.global_keys[email] = key

    def authenticate(self, request: Request, config: EmulatorConfig) -> Principal:
        authorization = request.header("authorization")
        email = request.header("x-auth-email")
        key = request.header("x-auth-key")
        if authorization is not None:
            return self._token_principal(authorization, config)
        if email is None and key is None:
            raise ApiError(
                config.missing_credentials_status,
                MISSING_CREDENTIALS,
                "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
            )
        if email is None:
            raise ApiError(403, MISSING_CREDENTIALS, "Missing X-Auth-Email header")
        if key is None:
            raise ApiError(403, MISSING_CREDENTIALS, "Missing X-Auth-Key header")
        if not GLOBAL_KEY_RE.match(key):
            raise _bad_headers(INVALID_X_AUTH_KEY_FORMAT, "Invalid format for X-Auth-Key header")
        with self.lock:
            known = self.global_keys.get(email)
        if known is None or not random_tokens.compare_digest(known, key):
            raise ApiError(403, UNKNOWN_GLOBAL_KEY, "Unknown X-Auth-Key or X-Auth-Email")
        return Principal(bucket=f"user:{email}", permission="write", account_id=None, email=email)

    def authorize(self, principal: Principal, account_id: str, needed: str, account_exists: bool) -> None:
        in_scope = principal.account_id in (None, account_id)
        if not (account_exists and in_scope and principal.may(needed)):
            raise ApiError(403, AUTHENTICATION_ERROR, "Authentication error")

    def verify(self, request: Request, config: EmulatorConfig, account_id: str | None) -> dict[str, str]:
        """The result of a token verify endpoint, or 1000 (401) for a token it does not know."""
        principal = None
        try:
            principal = self.authenticate(request, config)
        except ApiError as error:
            if error.code != INVALID_ACCESS_TOKEN:
                raise
        if principal is None or principal.token_id is None or principal.account_id != account_id:
            raise ApiError(401, INVALID_API_TOKEN, "Invalid API Token")
        return {"id": principal.token_id, "status": "active"}

    def user_details(self, request: Request, config: EmulatorConfig) -> dict[str, object]:
        """``GET /user``: the authenticated user (the SDK's ``UserGetResponse`` fields)."""
        principal = self.authenticate(request, config)
        if principal.email is None:
            raise ApiError(403, AUTHENTICATION_ERROR, "Authentication error")
        return {
            "id": user_id_of(principal.email),
            "email": principal.email,
            "first_name": None,
            "last_name": None,
            "country": None,
            "telephone": None,
            "zipcode": None,
            "betas": [],
            "organizations": [],
            "has_pro_zones": False,
            "has_business_zones": False,
            "has_enterprise_zones": False,
            "suspended": False,
            "two_factor_authentication_enabled": False,
            "two_factor_authentication_locked": False,
        }

    def _token_principal(self, authorization: str, config: EmulatorConfig) -> Principal:
        match = BEARER_RE.match(authorization.strip())
        if match is None:
            raise _bad_headers(INVALID_AUTHORIZATION_FORMAT, "Invalid format for Authorization header")
        with self.lock:
            record = self.tokens.get(match.group(1))
        if record is None:
            raise ApiError(config.invalid_token_status, INVALID_ACCESS_TOKEN, "Invalid access token")
        return Principal(
            bucket=f"token:{record.token_id}",
            permission=record.permission,
            account_id=record.account_id,
            token_id=record.token_id,
            email=DEFAULT_USER_EMAIL if record.account_id is None else None,
        )


def _bad_headers(chain_code: int, chain_message: str) -> ApiError:
    return ApiError(
        400,
        INVALID_REQUEST_HEADERS,
        "Invalid request headers",
        error_chain=[{"code": chain_code, "message": chain_message}],
    )
