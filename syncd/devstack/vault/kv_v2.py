"""The KV version 2 secrets engine (versioned), after hashicorp/vault-plugin-secrets-kv.

Verified in the plugin source (``path_data.go``, ``path_metadata.go``, ``AddVersion``):

- A missing key, a version above the current one, or a version pruned by ``max_versions`` reads
  404 ``{"errors":[]}``. A soft-deleted version (``deletion_time`` before now, by the emulator
  clock) or a destroyed one reads 404 with the whole envelope (``data.data = null``, metadata
  filled, ``mount_type: ""`` because the plugin marshals the body itself, no trailing newline).
- CAS texts: ``check-and-set parameter did not match the current version``,
  ``check-and-set parameter required for this call`` (400).
- Pruning keeps ``max(key max_versions, mount max_versions)`` or 10 versions; ``oldest_version``
  moves exactly as ``AddVersion`` moves it.
- ``delete_version_after``: the key's value wins when set, else the mount's; the version gets a
  ``deletion_time`` in the future and keeps reading 200 until the clock passes it.
- A path outside data/metadata/subkeys/delete/undelete/destroy/config answers 404 with the
  warning ``Invalid path for a versioned K/V secrets engine. ...`` (text seen in real responses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncd.devstack.vault.kv_v1 import list_children
from syncd.devstack.vault.kv_v2_paths import register_v2_routes
from syncd.devstack.vault.routing import Call, LogicalRouter
from syncd.devstack.vault.wire import VaultError, go_duration, rfc3339

DEFAULT_MAX_VERSIONS = 10


@dataclass
class VersionRecord:
    data: dict[str, Any] | None
    created_time: float
    deletion_time: float | None = None
    destroyed: bool = False

    def deleted(self, now: float) -> bool:
        return self.deletion_time is not None and self.deletion_time <= now

    def describe(self) -> dict[str, Any]:
        return {
            "created_time": rfc3339(self.created_time),
            "deletion_time": rfc3339(self.deletion_time) if self.deletion_time is not None else "",
            "destroyed": self.destroyed,
        }


@dataclass
class KeyRecord:
    versions: dict[int, VersionRecord] = field(default_factory=dict)
    current_version: int = 0
    oldest_version: int = 0
    created_time: float | None = None
    updated_time: float | None = None
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0
    custom_metadata: dict[str, str] | None = None


@dataclass
class MountConfig:
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "max_versions": self.max_versions,
            "cas_required": self.cas_required,
            "delete_version_after": go_duration(self.delete_version_after),
        }


class KvV2Backend:
    """State and operations of one KV v2 mount; HTTP shapes live in ``kv_v2_paths``."""

    mount_type = "kv"

    def __init__(self) -> None:
        self.config = MountConfig()
        self.keys: dict[str, KeyRecord] = {}
        self.router = LogicalRouter()
        register_v2_routes(self)

    def exists(self, call: Call) -> bool | None:
        for prefix in ("data/", "metadata/"):
            if call.path.startswith(prefix):
                return call.path[len(prefix) :] in self.keys
        return None

    # -- writes -----------------------------------------------------------------------------

    def check_cas(self, record: KeyRecord, options: Any) -> None:
        options = options if isinstance(options, dict) else {}
        if "cas" in options:
            try:
                cas = int(options["cas"])
            except (TypeError, ValueError) as exc:
                raise VaultError(400, "error parsing check-and-set parameter") from exc
            if cas != record.current_version:
                raise VaultError(400, "check-and-set parameter did not match the current version")
        elif self.config.cas_required or record.cas_required:
            raise VaultError(400, "check-and-set parameter required for this call")

    def add_version(self, key: str, data: dict[str, Any], now: float) -> tuple[int, VersionRecord, KeyRecord]:
        record = self.keys.setdefault(key, KeyRecord())
        after = record.delete_version_after or self.config.delete_version_after
        version = VersionRecord(dict(data), now, now + after if after > 0 else None)
        record.current_version += 1
        record.versions[record.current_version] = version
        record.updated_time = now
        if record.created_time is None:
            record.created_time = now
        keep = max(record.max_versions, self.config.max_versions) or DEFAULT_MAX_VERSIONS
        if record.current_version - record.oldest_version >= keep:
            to_delete = record.current_version - keep
            for number in range(record.oldest_version, to_delete + 1):
                record.versions.pop(number, None)
            record.oldest_version = to_delete + 1
        return record.current_version, version, record

    def mark_versions(self, key: str, versions: list[int], action: str, now: float) -> None:
        record = self.keys.get(key)
        if record is None:
            return
        for number in versions:
            version = record.versions.get(number)
            if version is None:
                continue
            if action == "delete" and not version.destroyed and not version.deleted(now):
                version.deletion_time = now
            elif action == "undelete" and not version.destroyed:
                version.deletion_time = None
            elif action == "destroy":
                version.destroyed = True
                version.data = None

    # -- reads ------------------------------------------------------------------------------

    def version_metadata(self, record: KeyRecord, number: int, version: VersionRecord) -> dict[str, Any]:
        described = version.describe()
        described["version"] = number
        described["custom_metadata"] = record.custom_metadata
        return described

    def key_metadata(self, record: KeyRecord) -> dict[str, Any]:
        return {
            "cas_required": record.cas_required,
            "created_time": rfc3339(record.created_time) if record.created_time is not None else "",
            "current_version": record.current_version,
            "custom_metadata": record.custom_metadata,
            "delete_version_after": go_duration(record.delete_version_after),
            "max_versions": record.max_versions,
            "oldest_version": record.oldest_version,
            "updated_time": rfc3339(record.updated_time) if record.updated_time is not None else "",
            "versions": {str(number): version.describe() for number, version in record.versions.items()},
        }

    def list_metadata(self, prefix: str) -> list[str]:
        return list_children(list(self.keys), prefix)
