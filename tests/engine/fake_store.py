"""An in-memory Secrets Store behind the ``StoreSecrets`` port, with a call log and a quota."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from syncd.errors import CloudflareError, SecretsStoreNotFound
from syncd.model import SecretValue
from syncd.model_store import NewStoreSecret, SecretsStore, StoreQuota, StoreSecret

STORE_ID = "5" * 32


@dataclass
class Held:
    secret: StoreSecret
    value: str


class FakeStoreClient:
    """One account, one store named ``default_secrets_store``. ``calls``: (operation, detail)."""

    def __init__(self, *, quota: int = 100) -> None:
        self.quota_limit = quota
        self.held: dict[str, Held] = {}  # by id
        self.calls: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)
        self.store_record = SecretsStore(STORE_ID, "default_secrets_store", "", "")

    # -- test controls ------------------------------------------------------------------------

    def _stamp(self) -> str:
        return f"2026-01-01T00:00:{next(self._clock):02d}.000000Z"

    def add(self, name: str, value: str, *, comment: str = "") -> StoreSecret:
        """A secret someone else created (no syncd mark unless ``comment`` says so)."""
        secret_id = f"{next(self._ids):032x}"
        stamp = self._stamp()
        secret = StoreSecret(secret_id, STORE_ID, name, comment, ("workers",), "active", stamp, stamp)
        self.held[secret_id] = Held(secret, value)
        return secret

    def by_name(self, name: str) -> Held | None:
        return next((h for h in self.held.values() if h.secret.name == name), None)

    def values(self) -> dict[str, str]:
        return {h.secret.name: h.value for h in self.held.values()}

    def hand_edit(self, name: str, value: str) -> None:
        held = self.by_name(name)
        assert held is not None
        held.value = value
        held.secret = _replace(held.secret, modified=self._stamp())

    def remove(self, name: str) -> None:
        held = self.by_name(name)
        assert held is not None
        del self.held[held.secret.id]

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    # -- StoreSecrets ---------------------------------------------------------------------------

    def find_store(self, account_id: str, name_or_id: str) -> SecretsStore:
        self.calls.append(("find_store", name_or_id))
        if name_or_id not in (STORE_ID, self.store_record.name):
            raise SecretsStoreNotFound(f"no store {name_or_id!r}")
        return self.store_record

    def list_secrets(self, account_id: str, store_id: str) -> list[StoreSecret]:
        self.calls.append(("list", ""))
        return [h.secret for h in self.held.values()]

    def create_secrets(self, account_id: str, store_id: str, secrets: Sequence[NewStoreSecret]) -> list[StoreSecret]:
        self.calls.append(("create", ",".join(s.name for s in secrets)))
        names = {h.secret.name for h in self.held.values()}
        if any(s.name in names for s in secrets):
            raise CloudflareError("secret_name_already_exists", status=409, code=1003)
        if len(self.held) + len(secrets) > self.quota_limit:
            raise CloudflareError("maximum_secrets_exceeded", status=400, code=1003)
        created = []
        for new in secrets:
            secret_id = f"{next(self._ids):032x}"
            stamp = self._stamp()
            secret = StoreSecret(secret_id, STORE_ID, new.name, new.comment, new.scopes, "pending", stamp, stamp)
            self.held[secret_id] = Held(secret, new.value.reveal())
            created.append(secret)
        return created

    def update_secret(
        self,
        account_id: str,
        store_id: str,
        secret_id: str,
        *,
        value: SecretValue | None = None,
        scopes: Sequence[str] | None = None,
        comment: str | None = None,
    ) -> StoreSecret:
        held = self.held.get(secret_id)
        self.calls.append(("update", "?" if held is None else held.secret.name))
        if held is None:
            raise SecretsStoreNotFound("secret_not_found", status=404, code=1001, api_message="secret_not_found")
        if value is not None:
            held.value = value.reveal()
        secret = held.secret
        held.secret = _replace(
            secret,
            modified=self._stamp(),
            scopes=secret.scopes if scopes is None else tuple(scopes),
            comment=secret.comment if comment is None else comment,
        )
        return held.secret

    def delete_secret(self, account_id: str, store_id: str, secret_id: str) -> None:
        held = self.held.pop(secret_id, None)
        self.calls.append(("delete", "?" if held is None else held.secret.name))

    def quota(self, account_id: str) -> StoreQuota:
        self.calls.append(("quota", ""))
        return StoreQuota(self.quota_limit, len(self.held))


def _replace(secret: StoreSecret, **fields: object) -> StoreSecret:
    return dataclasses.replace(secret, **fields)  # type: ignore[arg-type]
