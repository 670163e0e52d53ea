"""Shared helpers for the engine tests: canary values, mappings and secret versions, test keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syncd.config import MappingSettings
from syncd.model import KvVersion, SecretData, SecretVersion, Target, VaultSecretRef

DATA = Path(__file__).parent / "data"

# Canary values: they may appear only in a SecretBody's revealed content, nowhere else.
CANARY = "canary-engine-7c41d2f0"
CANARY_2 = "canary-engine-second-93ab"
CANARIES = (CANARY, CANARY_2)

ACCOUNT = "0123456789abcdef0123456789abcdef"
TARGET = Target(ACCOUNT, "edge-api")
REF = VaultSecretRef("secret", "apps/edge")


def leaks(text: str | bytes, canaries: tuple[str, ...] = CANARIES) -> list[int]:
    """Indexes of the canaries found in ``text``; compare with [] so a failure never prints one."""
    blob = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return [i for i, canary in enumerate(canaries) if canary.encode() in blob]


def error_text(exc: BaseException) -> str:
    """Everything an exception shows: str, repr, args, and the chain below it."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        parts.extend([str(seen), repr(seen), *(repr(a) for a in seen.args)])
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def mapping(**fields: Any) -> MappingSettings:
    raw: dict[str, Any] = {
        "name": "edge",
        "vault": {"mount": REF.mount, "path": REF.path},
        "target": {"script": TARGET.script, "account_id": ACCOUNT},
    }
    raw.update(fields)
    return MappingSettings.from_table(raw)


def secret(data: dict[str, Any], version: int | None = 7) -> SecretVersion:
    kv = KvVersion.V2 if version is not None else KvVersion.V1
    return SecretVersion(REF, kv, version, None, SecretData(data))


def read_data(name: str) -> str:
    return (DATA / name).read_text()


def read_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()
