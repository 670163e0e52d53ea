"""The leader-election record as a Lease spec carries it, and the Lease's ``MicroTime`` format.

``MicroTime`` is RFC 3339 with exactly six fractional digits: the API server parses it with Go's
layout ``2006-01-02T15:04:05.000000Z07:00`` and refuses anything else with a 400
(krustlet/krustlet#5 quotes the answer), so never use ``datetime.isoformat()`` (no fraction when the
microseconds are 0).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

MICROTIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_microtime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(MICROTIME_FORMAT)


def parse_microtime(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec (``holderIdentity`` ... ``leaseTransitions``) and its ``resourceVersion``."""

    holder: str | None
    lease_duration_seconds: int | None
    acquire_time: datetime | None
    renew_time: datetime | None
    transitions: int
    resource_version: str = ""

    def same_spec(self, other: LeaseRecord | None) -> bool:
        """Equal apart from the resourceVersion: client-go's "observed a change" test."""
        return other is not None and replace(self, resource_version="") == replace(other, resource_version="")

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"leaseTransitions": self.transitions}
        if self.holder:
            spec["holderIdentity"] = self.holder
        if self.lease_duration_seconds is not None:
            spec["leaseDurationSeconds"] = self.lease_duration_seconds
        if self.acquire_time is not None:
            spec["acquireTime"] = format_microtime(self.acquire_time)
        if self.renew_time is not None:
            spec["renewTime"] = format_microtime(self.renew_time)
        return spec

    @classmethod
    def from_lease(cls, lease: dict[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        duration = spec.get("leaseDurationSeconds")
        return cls(
            holder=spec.get("holderIdentity") or None,
            lease_duration_seconds=int(duration) if duration is not None else None,
            acquire_time=parse_microtime(spec.get("acquireTime")),
            renew_time=parse_microtime(spec.get("renewTime")),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
        )
