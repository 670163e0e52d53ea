"""The chunked exposition: byte for byte ``generate_latest``, with a fraction of its memory."""

from __future__ import annotations

import math
import threading
import tracemalloc
from collections.abc import Callable, Iterable

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.metrics_core import Metric

from syncd.app.service.exposition import exposition_chunks
from syncd.app.service.mapping_series import MappingSeries
from syncd.app.service.metrics import Metrics
from tests.app.test_metrics import cycle, push, result

AWKWARD = ('quo"te', "back\\slash", "new\nline", "all\\\"\n3", "ünï cödé", "")


@pytest.fixture(params=[True, False], ids=["created", "no-created"])
def created_series(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """``PROMETHEUS_DISABLE_CREATED_SERIES`` unset and set: prometheus_client reads it into this flag at import
    (``disable_created_metrics()`` sets the same flag)."""
    monkeypatch.setattr(prometheus_metrics, "_use_created", bool(request.param))
    return bool(request.param)


def populate(series: MappingSeries, mappings: Iterable[str], now: float = 1_800_000_000.25) -> None:
    """Every per-mapping family, the way Metrics.record_cycle and count_drift fill them."""
    for i, mapping in enumerate(mappings):
        series.pushes.inc((mapping, "edge", "ok"), now + i, 2)
        series.pushes.inc((mapping, f"ns/{mapping}", "error"), now)
        series.bindings_written.inc((mapping, "edge"), now, 3 + i)
        series.in_sync.set(mapping, 1.0 if i % 2 else 0.0)
        series.last_success.set(mapping, now + i * 1e-3)
        series.staged.set(mapping, 0.0)
        series.drift_detected.touch(mapping, now)
        series.drift_corrected.inc(mapping, now, 1e21)  # floatToGoString's exponent form
        series.failures.inc((mapping, "CloudflareNotDeployed"), now)


def awkward_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    help_text = 'HELP with "quotes", back\\slash\nand newline'
    counter = Counter("app_requests", help_text, ["path", "code"], registry=registry)
    counter.labels(path='a"b\\c\nd', code="200").inc(3)
    Gauge("app_plain", "no labels", registry=registry).set(math.nan)
    series = MappingSeries(threading.Lock())
    registry.register(series)
    Histogram("app_latency_seconds", "latency", ["op"], buckets=(0.1, 1.0), registry=registry).labels("x").observe(0.5)
    Summary("app_sizes", "sizes", registry=registry).observe(7)
    Info("app_build", "build", registry=registry).info({"version": "1\\2"})
    gauge = Gauge("app_levels", "levels", ["z", "a"], registry=registry)
    gauge.labels(z="last", a="first").set(math.inf)
    gauge.labels(z="-", a="neg").set(-math.inf)

    populate(series, ["api-keys", "payments", "gone", *AWKWARD])
    series.keep_only(frozenset({"api-keys", "payments", *AWKWARD}))  # "gone" left the config
    series.drift_detected.set("set-not-counted", 4.0)  # a counter series without a created sample
    series.failures.set(("no-created", "other"), 1.0)
    series.in_sync.set("negative", -2.5)
    return registry


@pytest.mark.parametrize("batch", [1, 2, 7, 256])
def test_chunks_are_generate_latest_byte_for_byte(created_series: bool, batch: int) -> None:
    registry = awkward_registry()
    expected = generate_latest(registry)

    assert b"".join(exposition_chunks(registry, batch)) == expected
    assert (b"_created" in expected) is created_series
    assert b'mapping="all\\\\\\"\\n3"' in expected
    assert b'mapping="gone"' not in expected


def test_counters_with_created_samples_for_only_some_series(created_series: bool) -> None:
    registry = CollectorRegistry(auto_describe=True)
    series = MappingSeries(threading.Lock())
    registry.register(series)
    series.failures.set(("first", "other"), 1.0)  # no created stamp
    series.failures.inc(("second", "other"), 5.0)
    series.drift_detected.set("only-set", 2.0)  # a family where no series has one

    body = b"".join(exposition_chunks(registry, 1))

    assert body == generate_latest(registry)
    assert (b"syncd_mapping_failures_created" in body) is created_series
    assert b"syncd_drift_detected_created" not in body


def test_empty_families_keep_their_help_and_type_lines() -> None:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MappingSeries(threading.Lock()))

    body = b"".join(exposition_chunks(registry))

    assert body == generate_latest(registry)
    assert b"# TYPE syncd_pushes_total counter\n" in body


def test_metrics_render_is_generate_latest_of_its_registry() -> None:
    metrics = Metrics(version="9.9.9")
    report = cycle(result("api-keys"), result('we"ird\\name'), pushes=(push("api-keys", written=("K",)),))
    metrics.record_cycle(report)
    metrics.count_drift("api-keys", corrected=False)

    def stable(body: bytes) -> list[bytes]:  # process_* (CPU time, RSS) move between two scrapes
        return [line for line in body.splitlines() if not line.startswith((b"process_", b"# HELP process_"))]

    body, content_type = metrics.render()
    chunks, chunked_type = metrics.render_chunks()
    assert stable(body) == stable(generate_latest(metrics.registry))
    assert stable(b"".join(chunks)) == stable(body)
    assert content_type == chunked_type
    assert b'syncd_mapping_in_sync{mapping="we\\"ird\\\\name"} 1.0' in body


def test_a_chunk_of_per_mapping_lines_holds_at_most_one_batch() -> None:
    registry = CollectorRegistry(auto_describe=True)
    series = MappingSeries(threading.Lock())
    registry.register(series)
    populate(series, (f"m{i}" for i in range(500)))

    chunks = list(exposition_chunks(registry, 64))

    # a chunk is 64 strings: sample lines, or a 2-line HELP/TYPE header in place of one of them
    assert max(chunk.count(b"\n") for chunk in chunks) <= 64 + 1
    assert len(chunks) >= b"".join(chunks).count(b"\n") / (64 + 1) > 7000 / 65


def test_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch must be at least 1"):
        next(exposition_chunks(CollectorRegistry(), 0))


# --- memory ---------------------------------------------------------------------------------------


class Uncopied:
    """The per-mapping families over their own dicts (no per-scrape copy): only formatting allocates."""

    def __init__(self, series: MappingSeries) -> None:
        self.series = series

    def collect(self) -> Iterable[Metric]:
        return [f.metric(f.values, f.created if f.counter else None) for f in self.series.families]


def traced_peak(action: Callable[[], object]) -> int:
    """Bytes tracemalloc saw allocated at the peak of ``action``, above what was allocated before it."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def test_rendering_10000_mappings_holds_one_batch_of_lines_not_the_whole_exposition() -> None:
    series = MappingSeries(threading.Lock())
    populate(series, (f"mapping-{i:05d}" for i in range(10_000)))
    uncopied = Uncopied(series)
    largest = 0

    def stream() -> None:
        nonlocal largest
        for chunk in exposition_chunks(uncopied):
            largest = max(largest, len(chunk))

    whole = traced_peak(lambda: generate_latest(uncopied))
    streamed = traced_peak(stream)

    assert 0 < largest < 64 * 1024
    assert streamed < whole / 2, (streamed, whole)
    assert streamed < 16 * largest, (streamed, largest)
    # ~90,000 lines of ~80 bytes: the list of lines, the joined str and its encoding are each ~8 MB
    assert whole > 100 * streamed


def test_metrics_render_chunks_of_10000_mappings_needs_under_half_of_generate_latest() -> None:
    metrics = Metrics(version="9.9.9")
    populate(metrics._per_mapping, (f"mapping-{i:05d}" for i in range(10_000)))

    whole = traced_peak(lambda: generate_latest(metrics.registry))
    chunked = traced_peak(metrics.render_chunks)  # what GET /metrics sends: all chunks, ~8 MB of bytes

    assert chunked < whole / 2, (chunked, whole)
