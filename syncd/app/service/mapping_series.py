"""syncd's per-mapping Prometheus series, kept as plain values and turned into metric families at scrape time.

A ``prometheus_client`` child costs an object, a lock, a value object and label tuples per series:
~57 MiB of RSS for the series of 10,000 mappings (notes/vaultpath.md). :class:`MappingSeries` keeps,
per family, one dict from the series' key (the mapping name, or a tuple of label values starting
with it) to its value, plus, for counters, a dict to the time the series appeared (its ``_created``
sample). It is a ``prometheus_client`` collector: :meth:`MappingSeries.collect` yields
``GaugeMetricFamily``/``CounterMetricFamily`` with the same names, HELP texts, labels, values and
series order (first appearance) as ``Gauge``/``Counter`` children would have had, and honours
``PROMETHEUS_DISABLE_CREATED_SERIES`` as they do.

Not thread-safe by itself: the caller holds ``lock`` (given at construction) around every change;
:meth:`collect` takes it to copy the dicts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from prometheus_client import metrics as prometheus_metrics
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

__all__ = ["Family", "LazySamples", "MappingSeries", "label_values"]

Key = str | tuple[str, ...]  # the mapping name alone, or the label values in order (mapping first)
ZERO: Final = 0.0  # one shared object for every series at 0
# Counters hold small whole numbers: one shared float per value instead of one per series (a 10,000
# mapping series set would otherwise hold tens of thousands of equal floats).
_SHARED_COUNTS: Final = {float(n): float(n) for n in range(1024)}
PUSH_OUTCOMES: Final = ("ok", "error", "other")


def mapping_of(key: Key) -> str:
    return key if isinstance(key, str) else key[0]


def label_values(key: Key) -> tuple[str, ...]:
    """The series' label values, in the order of its family's ``labelnames``."""
    return (key,) if isinstance(key, str) else key


class Family:
    """The series of one metric: key -> value (and, for a counter, key -> creation time)."""

    __slots__ = ("counter", "created", "doc", "labelnames", "name", "values")

    def __init__(self, name: str, doc: str, labelnames: tuple[str, ...], *, counter: bool) -> None:
        self.name = name
        self.doc = doc
        self.labelnames = labelnames
        self.counter = counter
        self.values: dict[Key, float] = {}
        self.created: dict[Key, float] = {}

    def set(self, key: Key, value: float) -> None:
        self.values[key] = value

    def touch(self, key: Key, now: float) -> None:
        """Export a counter at 0 from now on if it has no series yet."""
        if key not in self.values:
            self.values[key] = ZERO
            self.created[key] = now

    def inc(self, key: Key, now: float, amount: float = 1.0) -> None:
        previous = self.values.get(key)
        if previous is None:
            self.created[key] = now
            previous = ZERO
        total = previous + amount
        self.values[key] = _SHARED_COUNTS.get(total, total)

    def pop(self, key: Key) -> None:
        self.values.pop(key, None)
        self.created.pop(key, None)

    def drop(self, unwanted: Callable[[Key], bool]) -> None:
        for key in [key for key in self.values if unwanted(key)]:
            self.pop(key)

    def metric(self, values: dict[Key, float], created: dict[Key, float] | None) -> Metric:
        """The family as of ``values``; its samples are made one at a time while the exposition is written."""
        if self.counter:
            family: Metric = CounterMetricFamily(self.name, self.doc, labels=list(self.labelnames))
        else:
            family = GaugeMetricFamily(self.name, self.doc, labels=list(self.labelnames))
        family.samples = LazySamples(family.name, self.labelnames, values, created, counter=self.counter)
        return family


class LazySamples(list[Sample]):
    """A family's samples, made on iteration from a copy of its values.

    ``generate_latest`` only iterates ``Metric.samples``; building 100,000 ``Sample`` objects and
    label dicts up front for a scrape of 10,000 mappings would add tens of MiB to every scrape.
    The same samples as ``add_metric`` would have appended, in the same order.
    syncd's own exposition writer (:mod:`syncd.app.service.exposition`) does not iterate them: it
    reads ``values`` and ``created`` (``None`` for a gauge or with created series disabled).
    """

    def __init__(
        self,
        name: str,
        labelnames: tuple[str, ...],
        values: dict[Key, float],
        created: dict[Key, float] | None,
        *,
        counter: bool,
    ) -> None:
        super().__init__()
        self.name = name
        self.labelnames = labelnames
        self.values = values
        self.created = created if counter else None
        self.counter = counter

    def __iter__(self) -> Iterator[Sample]:
        value_name = self.name + "_total" if self.counter else self.name
        for key, value in self.values.items():
            labels = dict(zip(self.labelnames, label_values(key), strict=True))
            yield Sample(value_name, labels, value, None, None)
            if self.created is not None:
                stamp = self.created.get(key)
                if stamp is not None:
                    yield Sample(self.name + "_created", dict(labels), stamp, None, None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return bool(self.values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, list) and list(iter(self)) == list(iter(other))

    __hash__ = None


class MappingSeries:
    """The per-mapping families, in the order the registry exposes them."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.pushes = Family(
            "syncd_pushes", "Cloudflare writes per mapping and script", ("mapping", "script", "outcome"), counter=True
        )
        self.bindings_written = Family(
            "syncd_bindings_written", "Secret bindings written to Cloudflare", ("mapping", "script"), counter=True
        )
        self.in_sync = Family(
            "syncd_mapping_in_sync", "1 when the mapping's Worker bindings equal Vault", ("mapping",), counter=False
        )
        self.last_success = Family(
            "syncd_mapping_last_success_timestamp_seconds",
            "When the mapping last finished a cycle in sync",
            ("mapping",),
            counter=False,
        )
        self.staged = Family(
            "syncd_mapping_staged",
            "1 while the mapping's latest rotation is staged in an undeployed Worker version",
            ("mapping",),
            counter=False,
        )
        self.drift_detected = Family(
            "syncd_drift_detected",
            "Hand edits of bindings syncd owns, found by drift checks",
            ("mapping",),
            counter=True,
        )
        self.drift_corrected = Family(
            "syncd_drift_corrected",
            "Drifted bindings re-pushed and confirmed by Cloudflare",
            ("mapping",),
            counter=True,
        )
        self.failures = Family(
            "syncd_mapping_failures",
            "Failed mapping reconciliations by error class",
            ("mapping", "reason"),
            counter=True,
        )
        self.families: tuple[Family, ...] = (
            self.pushes,
            self.bindings_written,
            self.in_sync,
            self.last_success,
            self.staged,
            self.drift_detected,
            self.drift_corrected,
            self.failures,
        )

    def keep_only(self, mappings: frozenset[str]) -> None:
        """Drop every series of a mapping not in ``mappings`` (O(series): only on config reloads)."""
        for family in self.families:
            family.drop(lambda key: mapping_of(key) not in mappings)

    def drop_script(self, mapping: str, script: str) -> None:
        """Drop the mapping's series labelled with ``script`` (it moved to another script)."""
        for outcome in PUSH_OUTCOMES:
            self.pushes.pop((mapping, script, outcome))
        self.bindings_written.pop((mapping, script))

    # --- prometheus_client Collector ----------------------------------------------------------------

    def describe(self) -> Iterable[Metric]:
        return [family.metric({}, None) for family in self.families]

    def collect(self) -> Iterator[Metric]:
        use_created = prometheus_metrics._use_created
        with self._lock:
            copies = [
                (family, family.values.copy(), family.created.copy() if use_created and family.counter else None)
                for family in self.families
            ]
        for family, values, created in copies:
            yield family.metric(values, created)
