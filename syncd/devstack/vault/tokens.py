"""The token store: issuing, looking up, renewing and revoking service tokens.

Lifetimes follow ``sdk/framework`` ``CalculateTTL``: a token's ``ttl`` counts from its last
renewal; renewals may not go past ``creation_time + max_ttl`` (explicit max TTL, the role's
``token_max_ttl``, or the system max of 768h), and a capped renewal succeeds with the warning
``TTL of "<asked>" exceeded the effective max_ttl of "<left>"; TTL value is capped accordingly``
(Go duration strings, text as found in Vault's framework code and CLI output). Periodic tokens
renew to their period with no max unless ``explicit_max_ttl`` is set. Expiry is judged by the
emulator clock. Token ids look like Vault's (``hvs.`` + random), shorter than real ones.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from syncd.devstack.vault.wire import VaultError, go_duration, rfc3339

SYSTEM_DEFAULT_TTL = 768 * 3600  # 32 days: Vault's default and max lease TTL
SYSTEM_MAX_TTL = 768 * 3600
_ALPHABET = string.ascii_letters + string.digits


def random_id(length: int = 24) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass
class Token:
    id: str
    accessor: str
    policies: list[str]
    creation_time: float
    ttl: int  # 0: never expires
    last_renewal: float
    explicit_max_ttl: int = 0
    max_ttl: int = 0  # role/mount max; 0 -> system max
    period: int = 0
    renewable: bool = True
    display_name: str = "token"
    meta: dict[str, str] | None = None
    path: str = "auth/token/create"
    parent: str | None = None
    orphan: bool = False
    num_uses: int = 0
    entity_id: str = ""
    creation_ttl: int = 0
    children: set[str] = field(default_factory=set)

    @property
    def is_root(self) -> bool:
        return "root" in self.policies

    def expires_at(self) -> float | None:
        return None if self.ttl == 0 else self.last_renewal + self.ttl

    def expired(self, now: float) -> bool:
        expiry = self.expires_at()
        return expiry is not None and now >= expiry

    def seconds_left(self, now: float) -> int:
        expiry = self.expires_at()
        return 0 if expiry is None else max(0, int(expiry - now))

    def effective_max_ttl(self) -> int:
        limits = [limit for limit in (self.explicit_max_ttl, self.max_ttl) if limit > 0]
        return min(limits) if limits else SYSTEM_MAX_TTL

    def auth_block(self) -> dict[str, Any]:
        return {
            "client_token": self.id,
            "accessor": self.accessor,
            "policies": list(self.policies),
            "token_policies": list(self.policies),
            "metadata": self.meta,
            "lease_duration": self.ttl,
            "renewable": self.renewable,
            "entity_id": self.entity_id,
            "token_type": "service",
            "orphan": self.orphan,
            "mfa_requirement": None,
            "num_uses": self.num_uses,
        }

    def lookup_data(self, now: float) -> dict[str, Any]:
        expiry = self.expires_at()
        data: dict[str, Any] = {
            "accessor": self.accessor,
            "creation_time": int(self.creation_time),
            "creation_ttl": self.creation_ttl,
            "display_name": self.display_name,
            "entity_id": self.entity_id,
            "expire_time": rfc3339(expiry) if expiry is not None else None,
            "explicit_max_ttl": self.explicit_max_ttl,
            "id": self.id,
            "issue_time": rfc3339(self.creation_time),
            "meta": self.meta,
            "num_uses": self.num_uses,
            "orphan": self.orphan,
            "path": self.path,
            "policies": list(self.policies),
            "renewable": self.renewable,
            "ttl": self.seconds_left(now),
            "type": "service",
        }
        if self.period:
            data["period"] = self.period
        if self.last_renewal != self.creation_time:
            data["last_renewal"] = rfc3339(self.last_renewal)
            data["last_renewal_time"] = int(self.last_renewal)
        return data


def normalize_policies(policies: list[str], *, add_default: bool = True) -> list[str]:
    """Vault's policy list: lower-cased, de-duplicated, sorted, ``default`` added, root alone."""
    names = {policy.strip().lower() for policy in policies if policy.strip()}
    if "root" in names:
        return ["root"]
    if add_default:
        names.add("default")
    return sorted(names)


class TokenStore:
    """All live tokens by id, and by accessor."""

    def __init__(self) -> None:
        self.tokens: dict[str, Token] = {}
        self.accessors: dict[str, str] = {}

    def issue(
        self,
        now: float,
        *,
        policies: list[str],
        ttl: int,
        max_ttl: int = 0,
        explicit_max_ttl: int = 0,
        period: int = 0,
        renewable: bool = True,
        display_name: str = "token",
        meta: dict[str, str] | None = None,
        path: str = "auth/token/create",
        parent: Token | None = None,
        orphan: bool = False,
        num_uses: int = 0,
        entity_id: str = "",
        token_id: str | None = None,
    ) -> tuple[Token, list[str]]:
        """A new token and the warnings Vault would return (TTL capped by the max TTL)."""
        warnings: list[str] = []
        token = Token(
            id=token_id or f"hvs.{random_id()}",
            accessor=random_id(),
            policies=policies,
            creation_time=now,
            ttl=ttl,
            last_renewal=now,
            explicit_max_ttl=explicit_max_ttl,
            max_ttl=max_ttl,
            period=period,
            renewable=renewable,
            display_name=display_name,
            meta=meta,
            path=path,
            parent=None if orphan or parent is None else parent.id,
            orphan=orphan or parent is None,
            num_uses=num_uses,
            entity_id=entity_id,
        )
        if period:
            token.ttl = period
        if token.ttl and not period and token.ttl > token.effective_max_ttl():
            warnings.append(
                f'TTL of "{go_duration(token.ttl)}" exceeded the effective max_ttl of '
                f'"{go_duration(token.effective_max_ttl())}"; TTL value is capped accordingly'
            )
            token.ttl = token.effective_max_ttl()
        if period and explicit_max_ttl and period > explicit_max_ttl:
            token.ttl = explicit_max_ttl
        token.creation_ttl = token.ttl
        self.tokens[token.id] = token
        self.accessors[token.accessor] = token.id
        if token.parent is not None and parent is not None:
            parent.children.add(token.id)
        return token, warnings

    def valid(self, token_id: str, now: float) -> Token | None:
        token = self.tokens.get(token_id)
        if token is None:
            return None
        if token.expired(now):
            self.revoke(token)
            return None
        return token

    def revoke(self, token: Token) -> None:
        for child_id in list(token.children):
            child = self.tokens.get(child_id)
            if child is not None:
                self.revoke(child)
        self.tokens.pop(token.id, None)
        self.accessors.pop(token.accessor, None)
        if token.parent and token.parent in self.tokens:
            self.tokens[token.parent].children.discard(token.id)

    def renew(self, token: Token, increment: int, now: float) -> list[str]:
        """Extend the token from now; returns warnings. Raises 400 when it cannot be renewed."""
        if not token.renewable or token.ttl == 0:
            raise VaultError(400, "lease is not renewable")
        warnings: list[str] = []
        if token.period:
            ttl = token.period
            if token.explicit_max_ttl:
                ttl = min(ttl, int(token.creation_time + token.explicit_max_ttl - now))
            token.ttl, token.last_renewal = ttl, now
            return warnings
        asked = increment or token.creation_ttl
        left = int(token.creation_time + token.effective_max_ttl() - now)
        if left <= 0:
            raise VaultError(400, "past the max TTL, cannot renew")
        ttl = asked
        if asked > left:
            warnings.append(
                f'TTL of "{go_duration(asked)}" exceeded the effective max_ttl of '
                f'"{go_duration(left)}"; TTL value is capped accordingly'
            )
            ttl = left
        token.ttl, token.last_renewal = ttl, now
        return warnings
