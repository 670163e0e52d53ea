"""The state store: what syncd pushed where, and how each mapping fared. Never a secret value.

SQLite in WAL mode (readers such as ``/status`` never block the writer), one connection shared by
threads under a lock, every write one transaction. The file and its directory are private (0600 and
0700). The schema is versioned in ``meta.schema_version``: an older file is migrated on open, a newer
one is refused with ``StateError`` so a downgrade cannot corrupt it.

It holds the random HMAC key of the fingerprints (``meta.hmac_key``), one row per binding syncd
knows on a target (``bindings``: Vault version, keyed fingerprint, shape, ownership) and one row per
mapping (``mapping_status``). A binding row with ``pending = 1`` is a write intent: recorded before
the first Cloudflare call for a binding syncd had no row for, so the ownership decided then survives
a crash between Cloudflare's confirmation and the record (schema 2; see the applier). A staged
rotation keeps its Worker version number in ``mapping_status.staged_version`` (schema 3; before, it
was inside the error code ``Staged(N)``, which the migration takes apart once).

The stored key lives next to the fingerprints, so the file alone keeps values safe from anyone who
only sees fingerprints (logs, ``/status``, a state dump) but not from someone with the whole file
and time to brute-force a short value; the file is therefore kept private, and operators who want
more set ``sync.fingerprint_key`` so that the key is kept outside the file.

One writer per file: a writer (``open(path)``) holds ``flock(LOCK_EX)`` on ``<path>.lock`` (0600,
it holds the writer's pid) until ``close()`` or its death, and a second writer, in this process or
another, is refused with ``StateLocked``. Readers (``open(path, exclusive=False)``: ``syncd status``
and ``syncd plan``) take no lock, open SQLite with ``mode=ro`` and never create, migrate or write,
so they work while the service runs.

Modules: ``records`` (the values), ``schema`` (versions, migrations, rows), ``files`` (the file and its
writer lock) and ``store`` (``StateStore``). Import from ``syncd.engine.state``.

``backend`` holds ``StateBackend``, the protocol the engine and the app use, so that the other
backend, ``kubernetes`` (``KubernetesStateStore``: the same records in a few Secrets, for replicas
behind a Lease), fits in without them caring; ``chunks`` (how its records are spread and encoded),
``secret_objects`` (its Secrets and API errors). Which backend ``[state]`` names is opened by the
app (``syncd.app.state_backend``): the engine builds no client and no transport.
"""

from syncd.engine.state.backend import StateBackend
from syncd.engine.state.records import STAGED_CODE, BindingRecord, MappingOutcome, MappingStatus
from syncd.engine.state.schema import HMAC_KEY_BYTES, MIGRATIONS, SCHEMA_VERSION
from syncd.engine.state.store import MEMORY, StateStore

__all__ = [
    "HMAC_KEY_BYTES",
    "MEMORY",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STAGED_CODE",
    "BindingRecord",
    "MappingOutcome",
    "MappingStatus",
    "StateBackend",
    "StateStore",
]
