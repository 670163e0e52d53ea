"""What Cloudflare's Secrets Store reports about stores, their secrets and the quota, as values.

Built by the clients layer (``syncd.clients.secrets_store``), used by the engine and the app. A
listed secret is metadata only: the API never returns a value. ``NewStoreSecret`` holds the value
to send as a ``SecretValue`` (masked in ``repr``) until the request body is built.
Shapes: SDK 5.9 ``SecretListResponse`` / ``StoreListResponse`` / ``QuotaGetResponse``; limits and
scopes from Cloudflare's API reference (see ``/work/shared/reference/cloudflare-secrets-store.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.model import SecretValue

STORE_SECRET_SCOPES = ("workers", "ai_gateway", "dex", "access", "containers", "websearch")
WORKERS_SCOPE = "workers"  # what a Worker's secrets_store_secret binding needs
MAX_STORE_VALUE_BYTES = 65536
STATUS_DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class SecretsStore:
    """One store of an account (one per account while the product is in beta)."""

    id: str
    name: str
    created: str
    modified: str


@dataclass(frozen=True, slots=True)
class StoreSecret:
    """One store secret's metadata. ``created``/``modified`` are Cloudflare's text, compared as is:
    a ``modified`` that changed without syncd writing is someone else's edit (drift)."""

    id: str
    store_id: str
    name: str
    comment: str
    scopes: tuple[str, ...]
    status: str  # "pending", "active" or "deleted"
    created: str
    modified: str

    @property
    def deleted(self) -> bool:
        return self.status == STATUS_DELETED


@dataclass(frozen=True, slots=True)
class NewStoreSecret:
    """A secret to create: ``value`` is revealed only into the request body."""

    name: str
    value: SecretValue
    scopes: tuple[str, ...] = (WORKERS_SCOPE,)
    comment: str = ""


@dataclass(frozen=True, slots=True)
class StoreQuota:
    """``GET /quota``: secrets the account may hold and holds now (every store together)."""

    quota: int
    usage: int

    @property
    def room(self) -> int:
        return max(self.quota - self.usage, 0)
