"""The Prometheus text exposition of a registry, written as a sequence of bounded bytes chunks.

``prometheus_client.generate_latest`` appends every sample line of a scrape to one list, then
joins and encodes it. With the series of 10,000 mappings that is ~110,000 small strings alive at
once, in pymalloc arenas that fragment and keep resident memory high after every scrape
(``bench/scrape_memory.py``: a 29 MiB tracemalloc peak and 110,000 live blocks, against 10 MiB
and under 900 for :meth:`Metrics.render_chunks`, the whole body included). :func:`exposition_chunks`
writes the same bytes, but renders the per-mapping families (:class:`LazySamples` samples, made by
:class:`~syncd.app.service.mapping_series.MappingSeries`) straight from their value dicts, ``batch``
lines at a time joined and encoded into one chunk: at most one batch of line strings is alive.
Every other metric of the registry (small, fixed-size collectors) still goes through
``generate_latest``, a run of consecutive ones at a time.

The output is byte for byte what ``generate_latest(registry)`` (escaping ``underscores``, the
default) writes; ``tests/app/test_exposition.py`` compares both. The sample-line format follows
``prometheus_client/exposition.py`` (``generate_latest.sample_line``, 0.26): labels sorted by
name, label values escaped as ``openmetrics._escape(value, ALLOWUTF8, ...)`` does, values through
``floatToGoString``, and a counter's ``_created`` samples after its ``_total`` ones under their own
``# HELP``/``# TYPE ... gauge`` header. HELP/TYPE headers are written by ``generate_latest`` itself
(of a sample-less copy of the family), so their escaping is prometheus_client's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Final

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from syncd.app.service.mapping_series import Key, LazySamples, label_values

__all__ = ["BATCH_LINES", "exposition_chunks"]

BATCH_LINES: Final = 256  # sample lines per chunk: ~20 KiB of bytes, a few hundred short-lived strings
_ESCAPING: Final = openmetrics.UNDERSCORES  # generate_latest's default, what Metrics.render served
_float_text: Final[Callable[[float], str]] = floatToGoString  # untyped in prometheus_client


class _Metrics:
    """A collector of metrics already collected, to hand to ``generate_latest``."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def exposition_chunks(registry: Collector, batch: int = BATCH_LINES) -> Iterator[bytes]:
    """``generate_latest(registry)`` as consecutive chunks; per-mapping families ``batch`` lines a chunk."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1 line, not {batch}")
    pending: list[Metric] = []
    for metric in registry.collect():
        if not isinstance(metric.samples, LazySamples):
            pending.append(metric)
            continue
        if pending:
            yield generate_latest(_Metrics(pending))
            pending = []
        yield from _family_chunks(metric, metric.samples, batch)
    if pending:
        yield generate_latest(_Metrics(pending))


def _header(name: str, documentation: str, typ: str) -> str:
    """The ``# HELP``/``# TYPE`` lines ``generate_latest`` writes for a family of this name and type."""
    return generate_latest(_Metrics([Metric(name, documentation, typ)])).decode()


def _family_chunks(metric: Metric, samples: LazySamples, batch: int) -> Iterator[bytes]:
    values, created = samples.values, samples.created
    value_name = samples.name + "_total" if samples.counter else samples.name
    sample_name = openmetrics.escape_metric_name(value_name, _ESCAPING)
    label_order = sorted(range(len(samples.labelnames)), key=samples.labelnames.__getitem__)
    label_names = [(openmetrics.escape_label_name(samples.labelnames[i], _ESCAPING), i) for i in label_order]

    def line(name: str, key: Key, value: float) -> str:
        if not label_names:
            return f"{name} {_float_text(value)}\n"
        texts = label_values(key)
        labels = ",".join([f'{label}="{_escape_label_value(texts[i])}"' for label, i in label_names])
        return f"{name}{{{labels}}} {_float_text(value)}\n"

    lines = [_header(metric.name, metric.documentation, metric.type)]
    for key, value in values.items():
        lines.append(line(sample_name, key, value))
        if len(lines) >= batch:
            yield "".join(lines).encode()
            lines = []
    if created is not None and any(key in created for key in values):
        created_name = openmetrics.escape_metric_name(samples.name + "_created", _ESCAPING)
        lines.append(_header(samples.name + "_created", metric.documentation, "gauge"))
        for key in values:
            stamp = created.get(key)
            if stamp is not None:
                lines.append(line(created_name, key, stamp))
                if len(lines) >= batch:
                    yield "".join(lines).encode()
                    lines = []
    if lines:
        yield "".join(lines).encode()


def _escape_label_value(value: str) -> str:
    # generate_latest: label values always support UTF-8 (the rune check is unused for ALLOWUTF8)
    return openmetrics._escape(value, openmetrics.ALLOWUTF8, openmetrics._is_legacy_labelname_rune)
