"""``StateBackend``: what the engine and the app ask of a state store, whichever keeps it.

Two implementations: ``StateStore`` (SQLite, one process, the default) and ``KubernetesStateStore``
(a few Secrets in syncd's namespace, written by the leader of several replicas). Both hold the same
records (``syncd.engine.state.records``) and never a secret value.

Durability contract (what the applier relies on for invariant 2):

- ``record_bindings`` with a write intent (a record with ``pending=True``) returns only once the
  intent is durable: a new process reading the state sees it, so the ownership decided before a
  Cloudflare call survives a crash during it. A ``StateError`` means nothing was recorded and the
  call must not be made.
- Every other change (confirmed records, forgotten names, statuses) is durable once
  ``record_mapping_results`` (the end of a cycle), ``remove_mapping_status`` or ``close`` returns.
  A backend may hold such changes in memory until then, so that one cycle costs one batch of
  writes; a crash before that costs at most one repeated Cloudflare write per binding (the
  recorded fingerprint is still the old one), never a lost rotation.
- Reads always see every change made through this handle, durable or not.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol, Self

from syncd.engine.state.records import BindingRecord, MappingOutcome, MappingStatus
from syncd.model import Target


class StateBackend(Protocol):
    @property
    def hmac_key(self) -> bytes:
        """The key of the value fingerprints when ``sync.fingerprint_key`` is not set."""
        ...

    @property
    def location(self) -> str:
        """Where the state lives, for messages (a path, or ``namespace/secret-prefix``)."""
        ...

    @property
    def read_only(self) -> bool: ...

    def bindings(self, *, target: Target | None = None, mapping: str | None = None) -> list[BindingRecord]:
        """Recorded bindings, optionally of one target and/or one mapping, ordered by target and name."""
        ...

    def record_bindings(self, records: Sequence[BindingRecord]) -> None:
        """Insert or replace each record (keyed by target and name), all or nothing."""
        ...

    def forget_bindings(self, target: Target, names: Collection[str]) -> None: ...

    def mapping_status(self, mapping: str) -> MappingStatus | None: ...

    def all_mapping_status(self) -> list[MappingStatus]:
        """Every mapping's status, ordered by mapping name."""
        ...

    def record_mapping_result(
        self,
        mapping: str,
        *,
        at: float,
        config_fingerprint: str | None,
        version: int | None,
        in_sync: bool,
        pushed: bool,
        error_code: str | None,
        error: str | None,
        staged_version: int | None = None,
    ) -> None:
        """Record one attempt at ``mapping`` (see ``MappingOutcome`` for the rules); a backend that
        subclasses ``StateBackend`` gets it from its ``record_mapping_results``."""
        self.record_mapping_results(
            [
                MappingOutcome(
                    mapping, at, config_fingerprint, version, in_sync, pushed, error_code, error, staged_version
                )
            ]
        )

    def record_mapping_results(self, outcomes: Sequence[MappingOutcome]) -> None:
        """Record a cycle's attempts (``MappingOutcome`` has the rules); ends the cycle's batch."""
        ...

    def remove_mapping_status(self, mapping: str) -> None: ...

    def mapping_names(self) -> set[str]:
        """Every mapping the state knows (by bindings or status)."""
        ...

    def reload(self) -> None:
        """Read the stored records again, dropping anything cached (a new leader calls it when it
        takes over, since the previous leader wrote meanwhile)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...

