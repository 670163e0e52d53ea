"""Per-mapping series: exposed at scrape time with prometheus_client's shape, kept compact in between."""

from __future__ import annotations

import threading
import time
import tracemalloc

from prometheus_client.parser import text_string_to_metric_families

from syncd.app.service.mapping_series import MappingSeries
from syncd.app.service.metrics import Metrics
from tests.app.test_metrics import cycle, push, result, scrape, value


def test_per_mapping_counters_carry_created_samples_from_when_they_appeared() -> None:
    metrics = Metrics(version="9.9.9")
    before = time.time()
    metrics.record_cycle(cycle(result("api-keys"), pushes=(push("api-keys", written=("K",)),)))
    after = time.time()

    for name, labels in [
        ("syncd_pushes_created", {"mapping": "api-keys", "script": "edge", "outcome": "ok"}),
        ("syncd_bindings_written_created", {"mapping": "api-keys", "script": "edge"}),
        ("syncd_drift_detected_created", {"mapping": "api-keys"}),
        ("syncd_drift_corrected_created", {"mapping": "api-keys"}),
    ]:
        created = value(metrics, name, **labels)
        assert created is not None, name
        assert before <= created <= after, name
    assert value(metrics, "syncd_drift_detected_total", mapping="api-keys") == 0


def test_per_mapping_families_keep_their_types_and_help_before_any_cycle() -> None:
    body, _ = Metrics(version="9.9.9").render()
    families = {f.name: (f.type, f.documentation) for f in text_string_to_metric_families(body.decode())}

    assert families["syncd_mapping_in_sync"] == ("gauge", "1 when the mapping's Worker bindings equal Vault")
    assert families["syncd_pushes"] == ("counter", "Cloudflare writes per mapping and script")
    assert families["syncd_mapping_failures"][0] == "counter"


def test_a_scrape_during_recording_sees_whole_series() -> None:
    metrics = Metrics(version="9.9.9")
    names = [f"m{i}" for i in range(300)]
    report = cycle(*(result(name) for name in names))
    done = threading.Event()
    errors: list[BaseException] = []

    def record() -> None:
        try:
            for _ in range(20):
                metrics.record_cycle(report)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            done.set()

    recorder = threading.Thread(target=record)
    recorder.start()
    while not done.is_set():
        samples = scrape(metrics)
        assert all(value == 1 for (name, _), value in samples.items() if name == "syncd_mapping_in_sync")
    recorder.join(timeout=30)
    assert errors == []
    assert len([key for key in scrape(metrics) if key[0] == "syncd_mapping_in_sync"]) == len(names)


def test_series_of_many_mappings_stay_compact_between_scrapes() -> None:
    metrics = Metrics(version="9.9.9")
    names = [f"mapping-{i:05d}" for i in range(2000)]
    report = cycle(
        *(result(name) for name in names),
        pushes=tuple(push(name, written=(f"K{i}",)) for i, name in enumerate(names)),
    )
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        metrics.record_cycle(report)
        metrics.record_cycle(report)
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # 7 series per mapping here; prometheus_client children took ~5.7 KiB per mapping for them
    assert (grown - start) / len(names) < 1536


def test_counters_at_equal_small_counts_share_one_value_object() -> None:
    series = MappingSeries(threading.Lock())
    for name in ("a", "b"):
        series.pushes.inc((name, "edge", "ok"), 1.0)
        series.pushes.inc((name, "edge", "ok"), 1.0)
    series.pushes.inc(("c", "edge", "ok"), 1.0, amount=0.5)

    values = series.pushes.values
    assert values[("a", "edge", "ok")] == 2.0
    assert values[("a", "edge", "ok")] is values[("b", "edge", "ok")]
    assert values[("c", "edge", "ok")] == 0.5  # other values are kept as they are
