"""How the records of the ``kubernetes`` backend are spread over Secrets and encoded in each.

Bucketing: a mapping's bindings and status live in Secret number ``bucket_of(mapping, count)``, a
stable hash (SHA-256, not Python's salted ``hash``) of the mapping's name. A rotation changes the
records of the mappings of one Vault secret, so it rewrites the few Secrets those mappings hash to.

Encoding: one data key, ``state.json.gz``, holding gzip (mtime 0: equal records give equal bytes)
of a JSON document with the same rows as the SQLite tables (``syncd.engine.state.schema``)::

    {"format": "syncd-state/1", "binding_columns": [...], "bindings": [[...], ...],
     "status_columns": [...], "mapping_status": [[...], ...]}

Rows are read by column name, so a later format can add columns. No value, no key: versions,
keyed fingerprints, shapes, ownership, intents and statuses only.

"Material" content (``material``) leaves out a status's ``last_attempt_at`` and ``last_success_at``:
they move every cycle, so comparing them would write every Secret every cycle. They are written
along with the next real change of their Secret (and the leader's ``/status`` shows them live).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.engine.state.records import BindingRecord, MappingStatus
from syncd.engine.state.schema import (
    binding_from_row,
    binding_to_row,
    legacy_staged,
    status_from_row,
    status_to_row,
)
from syncd.errors import StateError

FORMAT = "syncd-state/1"
DATA_KEY = "state.json.gz"
BINDING_COLUMNS = (
    "account_id",
    "dispatch_namespace",
    "script",
    "name",
    "mapping",
    "mount",
    "path",
    "vault_version",
    "fingerprint",
    "shape",
    "owned",
    "pushed_at",
    "pending",
    "destination_kind",
)
STATUS_COLUMNS = (
    "mapping",
    "config_fingerprint",
    "last_version",
    "last_success_at",
    "last_attempt_at",
    "last_pushed_at",
    "last_error_code",
    "last_error",
    "in_sync",
    "staged_version",
    "source_versions",
)
_VOLATILE = (STATUS_COLUMNS.index("last_success_at"), STATUS_COLUMNS.index("last_attempt_at"))


def bucket_of(mapping: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(mapping.encode()).digest()[:8], "big") % count


@dataclass(frozen=True)
class Chunk:
    bindings: tuple[BindingRecord, ...]
    statuses: tuple[MappingStatus, ...]


def binding_row(record: BindingRecord) -> str:
    """One binding as the JSON array stored in a chunk (computed once per change, then reused)."""
    return json.dumps(binding_to_row(record), separators=(",", ":"))


def status_row(status: MappingStatus) -> str:
    return json.dumps(status_to_row(status), separators=(",", ":"))


def material(status: MappingStatus) -> tuple[Any, ...]:
    """What must be written when it changes: every field but the two volatile times."""
    row = status_to_row(status)
    return tuple(value for index, value in enumerate(row) if index not in _VOLATILE)


_HEAD = json.dumps({"format": FORMAT, "binding_columns": BINDING_COLUMNS}, separators=(",", ":"))[:-1]
_STATUS_COLUMNS = json.dumps(STATUS_COLUMNS, separators=(",", ":"))


def encode_rows(binding_rows: Iterable[str], status_rows: Iterable[str]) -> bytes:
    """A chunk from rows already in JSON (``binding_row``/``status_row``), in the order given."""
    text = (
        f'{_HEAD},"bindings":[{",".join(binding_rows)}],'
        f'"status_columns":{_STATUS_COLUMNS},"mapping_status":[{",".join(status_rows)}]}}'
    )
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def encode(bindings: Iterable[BindingRecord], statuses: Iterable[MappingStatus]) -> bytes:
    """A chunk of these records, sorted by key (what the store writes for the same records)."""
    return encode_rows(
        [binding_row(b) for b in sorted(bindings, key=_binding_sort_key)],
        [status_row(s) for s in sorted(statuses, key=lambda s: s.mapping)],
    )


def _binding_sort_key(record: BindingRecord) -> tuple[str, ...]:
    row = binding_to_row(record)
    return (*row[:3], row[-1], row[3])  # target (account, namespace, script, kind), then the name


def decode(blob: bytes, where: str) -> Chunk:
    """The records of one Secret's ``state.json.gz``; ``StateError`` naming ``where`` if damaged."""
    try:
        document = json.loads(gzip.decompress(blob))
    except (OSError, EOFError, ValueError) as exc:
        raise StateError(f"state {where}: {DATA_KEY} is damaged ({type(exc).__name__})") from None
    if not isinstance(document, dict) or not isinstance(document.get("format"), str):
        raise StateError(f"state {where}: {DATA_KEY} is not syncd state")
    if document["format"] != FORMAT:
        raise StateError(
            f"state {where} has format {document['format']!r}; this syncd understands {FORMAT!r} (upgrade syncd)"
        )
    shared: dict[Any, Any] = {}
    try:
        bindings = [
            binding_from_row(_by_columns(row, document["binding_columns"], BINDING_COLUMNS), shared)
            for row in document["bindings"]
        ]
        statuses = [
            _status_of(_by_columns(row, document["status_columns"], STATUS_COLUMNS), document["status_columns"])
            for row in document["mapping_status"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"state {where}: {DATA_KEY} has damaged rows ({type(exc).__name__})") from None
    return Chunk(tuple(bindings), tuple(statuses))


def _status_of(row: list[Any], columns: Sequence[str]) -> MappingStatus:
    """A status row; one written before the ``staged_version`` column had the version in its code."""
    if "staged_version" not in columns:
        code_at = STATUS_COLUMNS.index("last_error_code")
        row[code_at], row[STATUS_COLUMNS.index("staged_version")] = legacy_staged(row[code_at])
    return status_from_row(row)


def _by_columns(row: Sequence[Any], columns: Sequence[str], wanted: Sequence[str]) -> list[Any]:
    if len(row) != len(columns):
        raise ValueError("row and columns differ in length")
    values = dict(zip(columns, row, strict=True))
    return [values.get(column) for column in wanted]
