"""What the ``kubernetes`` state backend costs: bytes per record, Secrets needed, writes per change.

```
python bench/state_backend.py [--mappings 10000] [--secrets 4] [--bindings-per-script 100] [--http] [--json]
```

It drives ``KubernetesStateStore`` over an in-memory Secrets API that counts PUTs and the bytes
they carry (the store's own encoding, so the sizes are what Kubernetes would store), with
realistic records: one mapping per Vault secret, one binding per mapping, 100 bindings per
script, 64-hex keyed fingerprints (incompressible), 32-hex shapes and config fingerprints.
It replays what the engine does:

1. **initial sync**: per script, the write intents (written at once), then the confirmed records;
   the cycle's statuses at the end (one batch);
2. **unchanged cycle**: every status recorded again with new times;
3. **rotations**: 1 mapping, then one Vault secret mapped to 10 and to 100 scripts.

For each it prints PUTs, bytes written and the store's CPU time (``process_time``); with ``--http``
the same run also goes over loopback HTTP to the Kubernetes API emulator (in this process, so its
wall time, not CPU, is the figure: what one leader waits for the API). Then the
fill of each Secret and the fewest Secrets (of ``max_secret_bytes`` = 512 KiB) that hold
``--mappings`` mappings, from the bucket sizes actually produced.
"""

from __future__ import annotations

import argparse
import base64
import copy
import itertools
import json
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``syncd`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syncd.engine.state import BindingRecord, MappingOutcome
from syncd.engine.state.chunks import DATA_KEY, bucket_of, encode
from syncd.engine.state.kubernetes import KubernetesStateStore
from syncd.errors import KubernetesApiError
from syncd.model import Target, VaultSecretRef

ACCOUNT = "0123456789abcdef0123456789abcdef"
LIMIT = 512 * 1024
KEY = secrets.token_bytes(32)


class CountingSecrets:
    """The Secrets API in memory: resourceVersion preconditions, PUTs and their bytes counted."""

    namespace = "syncd"

    def __init__(self, names: list[str]) -> None:
        self._version = itertools.count(1)
        self.objects = {n: {"metadata": {"name": n, "resourceVersion": str(next(self._version))}} for n in names}
        self.puts = 0
        self.put_bytes = 0

    def get(self, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.objects[name])

    def replace(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if body["metadata"]["resourceVersion"] != self.objects[name]["metadata"]["resourceVersion"]:
            raise KubernetesApiError("conflict", status=409, api_reason="Conflict")
        stored = dict(body)
        stored["metadata"] = {**body["metadata"], "resourceVersion": str(next(self._version))}
        self.objects[name] = stored
        self.puts += 1
        self.put_bytes += len(base64.b64decode(body["data"][DATA_KEY]))
        return copy.deepcopy(stored)

    def size(self, name: str) -> int:
        data = self.objects[name].get("data") or {}
        return len(base64.b64decode(data[DATA_KEY])) if DATA_KEY in data else 0


@dataclass
class Step:
    what: str
    puts: int
    kib_written: float
    cpu_ms: float
    http_wall_ms: float | None = None


@dataclass
class Result:
    mappings: int
    secrets: int
    steps: list[Step]
    secret_kib: list[float]
    bytes_per_mapping: float  # one binding record + one status, compressed
    bytes_per_binding_record: float  # compressed, bindings alone
    json_bytes_per_binding_record: float  # before compression
    secrets_needed: int  # fewest Secrets of 512 KiB that hold every bucket


def mapping_name(i: int) -> str:
    return f"team-{i % 37:02d}-service-{i:05d}"


def binding(i: int, version: int, *, pending: bool = False, per_script: int = 100) -> BindingRecord:
    return BindingRecord(
        target=Target(ACCOUNT, f"worker-{i // per_script:04d}"),
        name=f"API_KEY_{i:05d}",
        mapping=mapping_name(i),
        ref=VaultSecretRef("secret", f"apps/team-{i % 37:02d}/service-{i:05d}"),
        vault_version=None if pending else version,
        fingerprint=None if pending else secrets.token_hex(32),
        shape="3f1c0a9be2d84b7f9a51c6e0d2b7a8f4",
        owned=True,
        pushed_at=None if pending else 1_700_000_000.0 + version,
        pending=pending,
    )


def outcome(i: int, at: float, version: int, *, pushed: bool) -> MappingOutcome:
    config = f"{i:032x}"[::-1]
    return MappingOutcome(mapping_name(i), at, config, version, True, pushed, error_code=None, error=None)


def measure(store: KubernetesStateStore, api: CountingSecrets, what: str, action: Any) -> Step:
    puts, sent, cpu = api.puts, api.put_bytes, time.process_time()
    action()
    cpu_ms = round((time.process_time() - cpu) * 1e3, 1)
    return Step(what, api.puts - puts, round((api.put_bytes - sent) / 1024, 1), cpu_ms)


def steps_of(store: KubernetesStateStore, mappings: int, per_script: int) -> list[tuple[str, Any]]:
    """What the engine asks of the store: an initial sync, an unchanged cycle, three rotations."""
    scripts = range(0, mappings, per_script)

    def initial_sync() -> None:
        for first in scripts:
            batch = range(first, min(first + per_script, mappings))
            store.record_bindings([binding(i, 1, pending=True, per_script=per_script) for i in batch])
            store.record_bindings([binding(i, 1, per_script=per_script) for i in batch])
        store.record_mapping_results([outcome(i, 100.0, 1, pushed=True) for i in range(mappings)])

    unchanged = [outcome(i, 130.0, 1, pushed=False) for i in range(mappings)]
    steps: list[tuple[str, Any]] = [
        (f"initial sync ({len(scripts)} scripts)", initial_sync),
        ("unchanged cycle", lambda: store.record_mapping_results(unchanged)),
    ]
    for round_, fan_out in enumerate((1, 10, 100), start=2):
        rotated = [i * per_script for i in range(min(fan_out, len(scripts)))]  # one mapping on each of k scripts
        chosen = set(rotated)
        records = [binding(i, round_, per_script=per_script) for i in rotated]
        results = [
            outcome(i, 100.0 + 30 * round_, round_ if i in chosen else 1, pushed=i in chosen) for i in range(mappings)
        ]

        def rotate(records: list[BindingRecord] = records, results: list[MappingOutcome] = results) -> None:
            store.record_bindings(records)
            store.record_mapping_results(results)

        steps.append((f"rotation of 1 secret on {len(rotated)} script(s)", rotate))
    return steps


def run(mappings: int, secret_count: int, per_script: int, *, http: bool = False) -> Result:
    names = [f"syncd-state-{i}" for i in range(secret_count)]
    api = CountingSecrets(names)
    store = KubernetesStateStore.open(api, names, hmac_key=KEY, max_secret_bytes=4 * LIMIT)
    steps = [measure(store, api, what, action) for what, action in steps_of(store, mappings, per_script)]
    store.close()

    if http:
        for step, wall in zip(steps, http_walls(mappings, secret_count, per_script), strict=True):
            step.http_wall_ms = wall
    sizes = [api.size(n) for n in names]
    every = store_records(api, names)
    bindings_only = len(encode(every[0], ())) / max(1, len(every[0]))
    raw = len(json.dumps([list(asdict(b).values()) for b in every[0][:1000]], default=str)) / min(1000, len(every[0]))
    return Result(
        mappings=mappings,
        secrets=secret_count,
        steps=steps,
        secret_kib=[round(s / 1024, 1) for s in sizes],
        bytes_per_mapping=round(sum(sizes) / mappings, 1),
        bytes_per_binding_record=round(bindings_only, 1),
        json_bytes_per_binding_record=round(raw, 1),
        secrets_needed=secrets_needed(every[0], every[1]),
    )


def http_walls(mappings: int, secret_count: int, per_script: int) -> list[float]:
    """Wall ms of the same steps through ``SecretsClient`` against the emulator over loopback HTTP."""
    from syncd.clients.kubernetes import KubernetesEndpoint, SecretsClient  # noqa: PLC0415
    from syncd.devstack.kubernetes import SECRETS, KubernetesEmulator  # noqa: PLC0415

    names = [f"syncd-state-{i}" for i in range(secret_count)]
    with KubernetesEmulator(namespace="syncd") as kube:
        for name in names:
            kube.put_object(SECRETS, {"metadata": {"name": name}, "type": "Opaque"})
        client = SecretsClient(KubernetesEndpoint(kube.url, "syncd", token=lambda: kube.token, timeout_seconds=30))
        store = KubernetesStateStore.open(client, names, hmac_key=KEY, max_secret_bytes=4 * LIMIT)
        walls = []
        for action in steps_of(store, mappings, per_script):
            started = time.perf_counter()
            action[1]()
            walls.append(round((time.perf_counter() - started) * 1e3, 1))
        store.close()
        client.close()
    return walls


def store_records(api: CountingSecrets, names: list[str]) -> tuple[list[BindingRecord], list[Any]]:
    reader = KubernetesStateStore.open(api, names, hmac_key=KEY, exclusive=False)
    try:
        return reader.bindings(), reader.all_mapping_status()
    finally:
        reader.close()


def secrets_needed(bindings: list[BindingRecord], statuses: list[Any]) -> int:
    """The fewest Secrets whose every hash bucket encodes within 512 KiB."""
    count = 1
    while True:
        fits = True
        for index in range(count):
            chunk_b = [b for b in bindings if bucket_of(b.mapping, count) == index]
            chunk_s = [s for s in statuses if bucket_of(s.mapping, count) == index]
            if len(encode(chunk_b, chunk_s)) > LIMIT:
                fits = False
                break
        if fits:
            return count
        count += 1


def format_result(result: Result) -> str:
    lines = [
        f"kubernetes state backend: {result.mappings} mappings (1 binding each), {result.secrets} Secrets",
        f"{'step':<40} {'PUTs':>6} {'KiB written':>12} {'CPU ms':>8} {'HTTP wall ms':>13}",
    ]
    for s in result.steps:
        wall = "-" if s.http_wall_ms is None else s.http_wall_ms
        lines.append(f"{s.what:<40} {s.puts:>6} {s.kib_written:>12} {s.cpu_ms:>8} {wall:>13}")
    lines += [
        f"Secret sizes (KiB, gzip JSON): {result.secret_kib}",
        f"bytes per binding record: {result.bytes_per_binding_record} compressed, "
        f"{result.json_bytes_per_binding_record} as JSON; per mapping (binding + status): {result.bytes_per_mapping}",
        f"Secrets needed at 512 KiB each: {result.secrets_needed} (hash buckets, measured)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mappings", type=int, nargs="+", default=[10_000])
    parser.add_argument("--secrets", type=int, default=4)
    parser.add_argument("--bindings-per-script", type=int, default=100)
    parser.add_argument("--http", action="store_true", help="also time the steps over HTTP (the emulator)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for mappings in args.mappings:
        result = run(mappings, args.secrets, args.bindings_per_script, http=args.http)
        print(json.dumps(asdict(result)) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
