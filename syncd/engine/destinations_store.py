"""The Secrets Store kind (``DestinationKind.SECRETS_STORE``): one account's store, one store secret
per binding name, shared by every Worker that binds it.

Over the ``StoreSecrets`` port (``syncd.clients.secrets_store.SecretsStoreClient``):

- **The store** is found by name or id once (``find_store``) and kept; an answer that it is gone
  (``store_not_found``) forgets it and looks again.
- **Which secrets exist**: one paginated list (exact names, ``deleted`` rows left out) gives the
  name -> secret map. ``names`` always lists (ownership is decided from it); ``admit`` and ``write``
  reuse that listing, so a cycle that must decide ownership lists once, and a rotation of secrets
  syncd already knows costs no list at all (the ids are kept across cycles). A listing is dropped
  on any failed write, and a ``secret_not_found`` (an id deleted by hand meanwhile) lists again and
  retries once.
- **Writes**: deletions of syncd's own secrets by id, then ONE ``POST`` with every secret to
  create, then one ``PATCH`` by id per changed secret (value; scopes and comment only where they
  differ). No new Worker version, no deployment: every bound Worker reads the new value.
- **Ownership**: a secret syncd creates (or adopts) carries the comment ``OWNER_MARK`` with the
  mapping's name. syncd never changes or deletes a secret without it: ``names`` reports only
  unmarked secrets, ``admit`` refuses a mapping whose new name exists unmarked
  (``SecretsStoreNotOwned``) unless the mapping adopts it (``adopt = true``: it is then written with
  syncd's mark and owned from then on), and ``write`` refuses, before sending anything, a name
  that is unmarked and not adopted.
- **Quota**: before a cycle creates anything, ``admit`` reads ``GET /quota`` and refuses every
  mapping with a secret to create if they would not all fit (``SecretsStoreQuotaExceeded``, naming
  usage and quota): nothing is created partially. A create that ``admit`` did not see (a secret
  syncd owns that was deleted by hand) is refused whole by the API if it does not fit.
- **Drift**: values cannot be read back, but ``modified`` can. ``last_written`` is the ``modified``
  that Cloudflare answered to syncd's own last write of a secret (in memory: after a restart the
  drift check falls back to the record's push time); a different one is someone else's edit.

Beta caveats (see ``/work/shared/reference/cloudflare-secrets-store.md``): that the ``modified``
of a write's answer is the one a later list shows, and that activation (``pending`` ->
``active``) does not change it, are UNVERIFIED; the emulator behaves so.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import Any

from syncd.config import MappingSettings
from syncd.engine.ports import StoreSecrets
from syncd.errors import (
    InternalError,
    SecretsStoreNotFound,
    SecretsStoreNotOwned,
    SecretsStoreQuotaExceeded,
    SyncdError,
)
from syncd.model import SecretBody, SecretValue, Target
from syncd.model_store import WORKERS_SCOPE, NewStoreSecret, SecretsStore, StoreQuota, StoreSecret
from syncd.model_versions import StagedVersion

OWNER_MARK = "managed by syncd"
MAX_CHANGES_PER_WRITE = 1000  # one write: one POST and a PATCH per change; the account quota is ~100


def owner_comment(mapping: str) -> str:
    return f"{OWNER_MARK} (mapping {mapping})"


def is_syncds(secret: StoreSecret) -> bool:
    """Whether a store secret carries syncd's mark (created or adopted by syncd)."""
    return secret.comment.startswith(OWNER_MARK)


class SecretsStoreAdapter:
    """``DestinationAdapter`` of ``DestinationKind.SECRETS_STORE``; ``Target.script`` is the store's
    name or id as configured. Thread-safe: writers of different stores and the drift check share it."""

    def __init__(self, client: StoreSecrets) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._stores: dict[tuple[str, str], SecretsStore] = {}
        self._listings: dict[Target, dict[str, StoreSecret]] = {}
        self._written: dict[tuple[Target, str], str] = {}  # syncd's last write of a secret -> its modified
        self._adopted: set[tuple[Target, str]] = set()

    # -- what exists --------------------------------------------------------------------------

    def store(self, target: Target) -> SecretsStore:
        key = (target.account_id, target.script)
        with self._lock:
            found = self._stores.get(key)
        if found is None:
            found = self._client.find_store(target.account_id, target.script)
            with self._lock:
                self._stores[key] = found
        return found

    def secrets(self, target: Target, *, fresh: bool = False) -> dict[str, StoreSecret]:
        """name -> secret (live ones, exact names): the kept listing, or a new one (``fresh``, or none kept)."""
        with self._lock:
            kept = self._listings.get(target)
        if kept is not None and not fresh:
            return dict(kept)
        store = self.store(target)
        listing: dict[str, StoreSecret] = {}
        for secret in self._client.list_secrets(target.account_id, store.id):
            if not secret.deleted:
                listing.setdefault(secret.name, secret)
        with self._lock:
            self._listings[target] = listing
        return dict(listing)

    def quota(self, target: Target) -> StoreQuota:
        """The account's store secrets quota and usage (``GET /quota``)."""
        return self._client.quota(target.account_id)

    def last_written(self, target: Target, name: str) -> str | None:
        """The ``modified`` Cloudflare answered to syncd's last write of ``name`` (None: not known)."""
        with self._lock:
            return self._written.get((target, name))

    def note_seen(self, target: Target, name: str, modified: str) -> None:
        """The drift check judged this ``modified`` (reported or corrected): not reported again."""
        with self._lock:
            self._written[(target, name)] = modified

    def forget(self, target: Target, *, store: bool = False) -> None:
        with self._lock:
            self._listings.pop(target, None)
            if store:
                self._stores.pop((target.account_id, target.script), None)

    # -- DestinationAdapter ---------------------------------------------------------------------

    def names(self, target: Target) -> set[str]:
        return {name for name, secret in self.secrets(target, fresh=True).items() if not is_syncds(secret)}

    def prepare(self, target: Target, mapping: MappingSettings, body: SecretBody) -> SecretBody:
        return SecretBody(
            {**body.reveal(), "scopes": list(mapping.target.scopes), "comment": owner_comment(mapping.name)}
        )

    def admit(
        self, target: Target, new: Mapping[str, Collection[str]], adopting: Collection[str]
    ) -> dict[str, SyncdError]:
        listing = self.secrets(target)
        refused: dict[str, SyncdError] = {}
        creating: dict[str, list[str]] = {}
        for mapping, names in sorted(new.items()):
            unowned = sorted(n for n in names if n in listing and not is_syncds(listing[n]))
            if unowned and mapping not in adopting:
                refused[mapping] = SecretsStoreNotOwned(
                    f"store secret(s) {', '.join(unowned)} in {target} exist and are not syncd's (no "
                    f"{OWNER_MARK!r} comment): syncd changes only its own; rename the binding, remove "
                    "the secret, or set adopt = true on the mapping's target to take it over"
                )
                continue
            with self._lock:
                self._adopted.update((target, name) for name in unowned)
            missing = sorted(n for n in names if n not in listing)
            if missing:
                creating[mapping] = missing
        total = sum(len(names) for names in creating.values())
        if total:
            quota = self.quota(target)
            if quota.usage + total > quota.quota:
                for mapping, names in creating.items():
                    refused[mapping] = SecretsStoreQuotaExceeded(
                        f"creating {total} store secret(s) in {target} ({len(names)} for this mapping) would pass "
                        f"the account's Secrets Store quota: {quota.usage} of {quota.quota} in use; nothing was "
                        "created (delete unused store secrets or ask Cloudflare for a higher quota)",
                        usage=quota.usage,
                        quota=quota.quota,
                        creating=total,
                    )
        return refused

    def max_changes_per_call(self) -> int:
        return MAX_CHANGES_PER_WRITE

    def write(self, target: Target, changes: Mapping[str, SecretBody | None]) -> None:
        try:
            try:
                self._write(target, changes)
            except SecretsStoreNotFound as exc:
                # An id of the kept listing is gone (deleted by hand), or the store was made anew.
                self.forget(target, store=exc.api_message != "secret_not_found")
                self._write(target, changes)
        except SyncdError:
            self.forget(target)  # whatever Cloudflare did, the next use lists again
            raise

    def can_stage(self, target: Target) -> bool:
        return False  # a store secret has no versions: a change needs no deployment to stage

    def stage(self, target: Target, changes: Mapping[str, SecretBody | None], message: str) -> StagedVersion:
        raise InternalError(f"a Secrets Store has no versions to stage into ({target})")

    # -- one write ------------------------------------------------------------------------------

    def _write(self, target: Target, changes: Mapping[str, SecretBody | None]) -> None:
        store = self.store(target)
        listing = self.secrets(target)
        bodies = {name: body.reveal() for name, body in changes.items() if body is not None}
        with self._lock:
            unowned = sorted(
                name
                for name in bodies
                if (s := listing.get(name)) is not None and not is_syncds(s) and (target, name) not in self._adopted
            )
        if unowned:
            raise SecretsStoreNotOwned(
                f"store secret(s) {', '.join(unowned)} in {target} are not syncd's (someone else created them "
                "since syncd last looked): nothing was sent",
                nothing_sent=True,
            )
        account = target.account_id
        for name, change in changes.items():
            secret = listing.get(name)
            if change is None and secret is not None and is_syncds(secret):
                self._client.delete_secret(account, store.id, secret.id)
                self._forget_secret(target, name)
        new = [_new_secret(name, fields) for name, fields in bodies.items() if name not in listing]
        if new:
            for created in self._client.create_secrets(account, store.id, new):
                self._remember(target, created)
        for name, fields in bodies.items():
            secret = listing.get(name)
            if secret is not None:
                self._remember(target, self._update(account, store.id, secret, fields))

    def _update(self, account: str, store_id: str, secret: StoreSecret, body: dict[str, Any]) -> StoreSecret:
        scopes = [str(s) for s in body.get("scopes", ())]
        comment = str(body.get("comment", ""))
        return self._client.update_secret(
            account,
            store_id,
            secret.id,
            value=SecretValue(str(body["text"])),
            scopes=scopes if scopes and sorted(scopes) != sorted(secret.scopes) else None,
            comment=comment if comment and comment != secret.comment else None,
        )

    def _remember(self, target: Target, secret: StoreSecret) -> None:
        with self._lock:
            listing = self._listings.setdefault(target, {})
            listing[secret.name] = secret
            self._written[(target, secret.name)] = secret.modified
            self._adopted.discard((target, secret.name))

    def _forget_secret(self, target: Target, name: str) -> None:
        with self._lock:
            self._listings.get(target, {}).pop(name, None)
            self._written.pop((target, name), None)


def _new_secret(name: str, body: dict[str, Any]) -> NewStoreSecret:
    scopes = tuple(str(s) for s in body.get("scopes", ())) or (WORKERS_SCOPE,)
    return NewStoreSecret(name, SecretValue(str(body["text"])), scopes, str(body.get("comment", "")))
