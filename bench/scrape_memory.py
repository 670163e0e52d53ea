"""What one /metrics render of N mappings allocates: ``generate_latest`` against syncd's chunked writer.

```
python bench/scrape_memory.py [--paths 10000] [--batch 256] [--no-created] [--json]
```

Fills a ``Metrics`` the way one converged cycle of the ``memory.py`` workload does (every mapping
in sync, one binding written each, ``bench-NNN`` scripts of 100 mappings), then renders it in three
ways, side by side in one process:

- ``generate_latest``: ``prometheus_client.generate_latest(metrics.registry)``, what ``/metrics``
  served before;
- ``render_chunks``: ``Metrics.render_chunks()``, what ``/metrics`` sends now (every chunk is kept
  until the response is written, so the whole body is among its allocations);
- ``streamed``: ``exposition_chunks`` with each chunk dropped once seen (the floor: a response
  streamed as it is made).

Per way: the tracemalloc peak above the start of the render, and the most live blocks (Python
objects, mostly) the render had allocated at any moment it was observed (a tracemalloc snapshot
after every chunk, and after the registry's last collector for ``generate_latest``, when its list
holds every line). The two figures come from separate runs: snapshots allocate. All three are
checked to produce the same bytes (``process_*`` lines aside, which move between renders).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``syncd`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import generate_latest
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.metrics_core import Metric

from bench.workload import Workload
from syncd.app.service.exposition import BATCH_LINES, exposition_chunks
from syncd.app.service.metrics import Metrics
from syncd.engine.report import CycleReport, MappingResult, PushRecord, Trigger
from syncd.model import Target, VaultSecretRef

MIB = 1024 * 1024
ACCOUNT = "0" * 32


@dataclass
class RenderFigures:
    way: str
    peak_mib: float
    live_blocks: int
    body_bytes: int
    chunks: int
    largest_chunk_bytes: int


def converged_metrics(paths: int) -> Metrics:
    """The per-mapping series after one cycle that wrote one binding per mapping."""
    workload = Workload(paths)
    metrics = Metrics()
    now = time.time()
    results: list[MappingResult] = []
    pushes: list[PushRecord] = []
    for i in range(paths):
        mapping, target = f"bench-{i:05d}", Target(ACCOUNT, workload.script_of(i))
        ref = VaultSecretRef("secret", workload.path(i))
        results.append(MappingResult(mapping=mapping, target=target, ref=ref, in_sync=True, vault_version=1))
        pushes.append(
            PushRecord(
                target=target,
                mappings=(mapping,),
                written=(workload.binding(i),),
                deleted=(),
                outcome="ok",
                seconds=0.1,
                confirmed_at=now,
            )
        )
    metrics.configure_mappings(f"bench-{i:05d}" for i in range(paths))
    report = CycleReport(
        cycle_id="bench",
        trigger=Trigger.STARTUP,
        started_at=now - 5,
        finished_at=now,
        results=tuple(results),
        pushes=tuple(pushes),
    )
    metrics.record_cycle(report)
    return metrics


class _Probed:
    """The registry, with ``probe()`` called once its last collector has been collected."""

    def __init__(self, metrics: Metrics, probe: Callable[[], None]) -> None:
        self._metrics, self._probe = metrics, probe

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics.registry.collect()
        self._probe()


def _peak(action: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start


def _most_live_blocks(action: Callable[[Callable[[], None]], object]) -> int:
    """``action(probe)`` calls ``probe()`` at its fullest moments; the most blocks alive at one of them."""
    most = 0

    def probe() -> None:
        nonlocal most
        most = max(most, len(tracemalloc.take_snapshot().traces))

    gc.collect()
    tracemalloc.start()  # only the render's own allocations are traced
    try:
        action(probe)
    finally:
        tracemalloc.stop()
    return most


def _stable(body: bytes) -> list[bytes]:
    return [line for line in body.splitlines() if not line.startswith((b"process_", b"# HELP process_"))]


def _consume(chunks: Iterable[bytes], probe: Callable[[], None] | None = None) -> tuple[int, int, int]:
    count = total = largest = 0
    for chunk in chunks:
        count, total, largest = count + 1, total + len(chunk), max(largest, len(chunk))
        if probe is not None:
            probe()
    return count, total, largest


def measure(paths: int, batch: int) -> list[RenderFigures]:
    metrics = converged_metrics(paths)
    registry = metrics.registry
    reference = generate_latest(registry)
    kept, _ = metrics.render_chunks()
    if _stable(b"".join(kept)) != _stable(reference) or _stable(b"".join(exposition_chunks(registry, batch))) != (
        _stable(reference)
    ):
        raise AssertionError("the chunked exposition differs from generate_latest")
    del kept
    largest_kept = max(len(chunk) for chunk in exposition_chunks(registry))
    count, total, largest = _consume(exposition_chunks(registry, batch))
    figures = [
        RenderFigures(
            "generate_latest",
            _peak(lambda: generate_latest(registry)) / MIB,
            _most_live_blocks(lambda probe: generate_latest(_Probed(metrics, probe))),
            len(reference),
            1,
            len(reference),
        ),
        RenderFigures(
            "render_chunks",
            _peak(metrics.render_chunks) / MIB,
            _most_live_blocks(lambda probe: list(_kept_while_probing(exposition_chunks(registry), probe))),
            len(reference),
            len(metrics.render_chunks()[0]),
            largest_kept,
        ),
        RenderFigures(
            "streamed",
            _peak(lambda: _consume(exposition_chunks(registry, batch))) / MIB,
            _most_live_blocks(lambda probe: _consume(exposition_chunks(registry, batch), probe)),
            total,
            count,
            largest,
        ),
    ]
    return figures


def _kept_while_probing(chunks: Iterable[bytes], probe: Callable[[], None]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk
        probe()


def format_figures(paths: int, batch: int, figures: list[RenderFigures]) -> list[str]:
    created = "on" if prometheus_metrics._use_created else "off (PROMETHEUS_DISABLE_CREATED_SERIES)"
    lines = [
        f"== one /metrics render, {paths:,} mappings (created series {created}; streamed batch {batch} lines) ==",
        f"{'way':<16} {'tracemalloc peak':>17} {'live blocks':>12} {'body':>10} {'chunks':>7} {'largest chunk':>14}",
    ]
    for f in figures:
        lines.append(
            f"{f.way:<16} {f.peak_mib:>13.2f} MiB {f.live_blocks:>12,} {f.body_bytes / MIB:>6.2f} MiB"
            f" {f.chunks:>7,} {f.largest_chunk_bytes / 1024:>10.1f} KiB"
        )
    old, new = figures[0], figures[1]
    lines.append(
        f"render_chunks / generate_latest: peak {new.peak_mib / old.peak_mib:.2f}x,"
        f" live blocks {new.live_blocks / old.live_blocks:.4f}x"
    )
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--paths", type=int, default=10000, help="mappings (default 10000)")
    parser.add_argument("--batch", type=int, default=BATCH_LINES, help=f"lines per streamed chunk ({BATCH_LINES})")
    parser.add_argument("--no-created", action="store_true", help="as with PROMETHEUS_DISABLE_CREATED_SERIES=true")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of text")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.no_created:
        prometheus_metrics._use_created = False
    figures = measure(args.paths, args.batch)
    if args.json:
        print(json.dumps({"paths": args.paths, "batch": args.batch, "renders": [asdict(f) for f in figures]}, indent=2))
    else:
        print("\n".join(format_figures(args.paths, args.batch, figures)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
