"""Destination adapters: the engine's writes, routed by ``Target.kind`` to the adapter of that kind.

``WorkerScriptAdapter`` is the Worker script kind (``DestinationKind.WORKER_SCRIPT``) over the
``WorkerSecrets`` and ``WorkerVersions`` ports: one ``secrets-bulk`` call of at most 100 names per
write (one new Worker version), or one ``PUT``/``DELETE`` per binding with ``write_mode = "single"``;
staging through ``versions/latest``. ``Destinations`` holds one adapter per kind.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Literal

from syncd.config import MappingSettings
from syncd.engine.ports import DestinationAdapter, WorkerSecrets, WorkerVersions
from syncd.errors import CloudflareNotFound, InternalError, SyncdError
from syncd.model import DestinationKind, SecretBody, Target
from syncd.model_versions import StagedVersion

MAX_NAMES_PER_CALL = 100
SCRIPT_NOT_FOUND = 10007


class WorkerScriptAdapter:
    """A Worker script's secret bindings (``DestinationAdapter`` of ``DestinationKind.WORKER_SCRIPT``)."""

    def __init__(
        self,
        workers: WorkerSecrets,
        versions: WorkerVersions | None = None,
        *,
        write_mode: Literal["bulk", "single"] = "bulk",
        max_names_per_call: int = MAX_NAMES_PER_CALL,
    ) -> None:
        if not 1 <= max_names_per_call <= MAX_NAMES_PER_CALL:
            raise ValueError(f"max_names_per_call must be 1..{MAX_NAMES_PER_CALL}")
        self._workers = workers
        self._versions = versions
        self._write_mode = write_mode
        self._chunk = 1 if write_mode == "single" else max_names_per_call

    def names(self, target: Target) -> set[str]:
        return {s.name for s in self._workers.list_secrets(target)}

    def prepare(self, target: Target, mapping: MappingSettings, body: SecretBody) -> SecretBody:
        return body

    def admit(
        self, target: Target, new: Mapping[str, Collection[str]], adopting: Collection[str]
    ) -> dict[str, SyncdError]:
        return {}  # a pre-existing name is written or adopted as initial_sync says

    def max_changes_per_call(self) -> int:
        return self._chunk

    def write(self, target: Target, changes: Mapping[str, SecretBody | None]) -> None:
        try:
            if self._write_mode == "bulk":
                self._workers.bulk_update(target, changes)
                return
            for name, body in changes.items():
                if body is None:
                    self._workers.delete_secret(target, name)
                else:
                    self._workers.put_secret(target, body)
        except CloudflareNotFound as exc:
            # Deleting from a script that no longer exists: its secrets are gone with it.
            if any(body is not None for body in changes.values()) or exc.code != SCRIPT_NOT_FOUND:
                raise

    def can_stage(self, target: Target) -> bool:
        # versions/latest has no form inside a dispatch namespace
        return self._versions is not None and not target.dispatch_namespace

    def stage(self, target: Target, changes: Mapping[str, SecretBody | None], message: str) -> StagedVersion:
        if self._versions is None:
            raise InternalError(f"staging needs the versions client; none was given for {target}")
        return self._versions.stage_secrets(target, changes, message)


class Destinations:
    """One adapter per destination kind; each call goes to the adapter of ``target.kind``."""

    def __init__(self, adapters: Mapping[DestinationKind, DestinationAdapter]) -> None:
        self._adapters = dict(adapters)

    def of(self, target: Target) -> DestinationAdapter:
        adapter = self._adapters.get(target.kind)
        if adapter is None:
            raise InternalError(f"no destination adapter for {target.kind.value} ({target}) is configured")
        return adapter

    def adapters(self) -> list[DestinationAdapter]:
        return list(self._adapters.values())

    def with_adapter(self, kind: DestinationKind, adapter: DestinationAdapter) -> Destinations:
        return Destinations({**self._adapters, kind: adapter})
