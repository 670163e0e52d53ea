"""Drift of Secrets Store secrets: did someone else change or remove a store secret syncd owns?

A store secret's value cannot be read back, but its ``modified`` can. One check is one listing of
the store (``SecretsStoreAdapter.secrets``, all pages; it also refreshes the adapter's kept ids),
judged per owned secret:

- **missing**: absent from the listing, or present without syncd's mark (someone deleted it, or
  replaced it with one of their own; syncd will not overwrite theirs: the correction reports
  ``SecretsStoreNotOwned``);
- **changed**: its ``modified`` differs from the one Cloudflare answered to syncd's own last write
  (``SecretsStoreAdapter.last_written``). After a restart that memory is empty: a ``modified``
  later than the record's push time plus ``RESTART_SLACK_SECONDS`` (clock skew between syncd and
  Cloudflare, and the time between Cloudflare applying a write and syncd recording it) counts as
  changed, at worst one harmless rewrite; an edit within that slack of syncd's push before the
  restart goes unnoticed.

Each judged ``modified`` is remembered (``note_seen``), so a change is reported once; a correction
writes again and its answer becomes the new reference. Nothing is planted in the state. The check
runs inside ``DriftChecker``'s schedule and budget share (one listing per store per interval).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from syncd.engine.destinations_store import SecretsStoreAdapter, is_syncds
from syncd.engine.drift import DriftFinding, DriftKind
from syncd.engine.state import BindingRecord
from syncd.model import Target

RESTART_SLACK_SECONDS = 60.0
LIST_PAGE = 50  # ``SecretsStoreClient``'s page size: one request per page


def _epoch(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class StoreDriftCheck:
    def __init__(self, adapter: SecretsStoreAdapter, *, restart_slack: float = RESTART_SLACK_SECONDS) -> None:
        self._adapter = adapter
        self._slack = restart_slack

    def check(self, target: Target, owned: Sequence[BindingRecord]) -> tuple[DriftFinding, int]:
        """The finding for one store and the requests it took (raises ``SyncdError`` on failure)."""
        listing = self._adapter.secrets(target, fresh=True)
        requests = 1 + len(listing) // LIST_PAGE
        missing: set[str] = set()
        changed: set[str] = set()
        for record in owned:
            secret = listing.get(record.name)
            if secret is None or not is_syncds(secret):
                missing.add(record.name)
                continue
            known = self._adapter.last_written(target, record.name)
            if known is not None:
                if secret.modified != known:
                    changed.add(record.name)
            else:
                modified = _epoch(secret.modified)
                if modified is not None and record.pushed_at is not None and modified > record.pushed_at + self._slack:
                    changed.add(record.name)
            self._adapter.note_seen(target, record.name, secret.modified)
        if not changed and not missing:
            return DriftFinding("none", target), requests
        kind: DriftKind = "overwritten" if changed else "missing"
        return DriftFinding(kind, target, missing=frozenset(missing), changed=frozenset(changed)), requests
