"""Write latency and the concurrent-edit 429: how long a script write takes, and one at a time.

A real secret write creates and deploys a Worker version and answers after about a second
(issue 8's measurements). :class:`WriteLatency` models that: ``off`` (the default), a fixed
number of seconds, ``uniform:LOW,HIGH`` or ``lognormal:MEDIAN,SIGMA`` (seeded, so a run can be
repeated). Spec strings: ``"0"``/``"off"``, ``"1.5"``, ``"uniform:0.5,1.5"``,
``"lognormal:1.0,0.3"``; an optional ``@SEED`` suffix seeds the distribution.

:class:`EditSlots` keeps one write per script in flight. A second write to the same script
while one is in flight is answered 429 at once, as Cloudflare answers concurrent edits of one
script; writes to other scripts are never held. The status is 429 as described in issue 8; the
code and message are UNVERIFIED (``EmulatorConfig.concurrent_edit_code``/``_message``).

The sleep happens while holding only the script's slot, never the emulator lock, so the
threaded server keeps serving every other request during it.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

LATENCY_KINDS = ("off", "fixed", "uniform", "lognormal")


@dataclass(frozen=True)
class LatencySpec:
    kind: str = "off"
    a: float = 0.0  # fixed: seconds; uniform: low; lognormal: median seconds
    b: float = 0.0  # uniform: high; lognormal: sigma
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in LATENCY_KINDS:
            raise ValueError(f"latency kind must be one of {LATENCY_KINDS}, not {self.kind!r}")
        if self.a < 0 or self.b < 0 or not (math.isfinite(self.a) and math.isfinite(self.b)):
            raise ValueError("latency parameters must be finite and not negative")
        if self.kind == "uniform" and self.b < self.a:
            raise ValueError("uniform latency needs LOW <= HIGH")
        if self.kind == "lognormal" and self.a <= 0:
            raise ValueError("lognormal latency needs a positive median")

    @classmethod
    def parse(cls, text: str) -> LatencySpec:
        """``off`` | ``SECONDS`` | ``uniform:LOW,HIGH`` | ``lognormal:MEDIAN,SIGMA``, each with ``@SEED``."""
        body, _, seed_text = text.strip().partition("@")
        try:
            seed = int(seed_text) if seed_text else None
            kind, _, params = body.partition(":")
            if not params:
                if kind in ("off", ""):
                    return cls("off", seed=seed)
                seconds = float(kind)
                return cls("fixed" if seconds > 0 else "off", seconds, seed=seed)
            low, _, high = params.partition(",")
            return cls(kind, float(low), float(high or 0), seed)
        except ValueError as exc:
            raise ValueError(
                f"bad write latency {text!r}: use off, SECONDS, uniform:LOW,HIGH or lognormal:MEDIAN,SIGMA "
                f"(optionally @SEED): {exc}"
            ) from exc

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "a": self.a, "b": self.b, "seed": self.seed}


class WriteLatency:
    """Draws one delay per write from the current spec; thread-safe, changeable at run time."""

    def __init__(self, spec: LatencySpec | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(spec or LatencySpec())

    def configure(self, spec: LatencySpec) -> None:
        """Use ``spec`` from now on; writes sleeping under the old spec end their sleep at once."""
        with self._lock:
            self._spec = spec
            self._random = random.Random(spec.seed)
            previous = getattr(self, "_changed", None)
            self._changed = threading.Event()
        if previous is not None:
            previous.set()

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the model is changed meanwhile (tests release held writes)."""
        with self._lock:
            changed = self._changed
        if seconds > 0:
            changed.wait(seconds)

    @property
    def spec(self) -> LatencySpec:
        with self._lock:
            return self._spec

    def draw(self) -> float:
        with self._lock:
            spec = self._spec
            if spec.kind == "fixed":
                return spec.a
            if spec.kind == "uniform":
                return self._random.uniform(spec.a, spec.b)
            if spec.kind == "lognormal":
                return self._random.lognormvariate(math.log(spec.a), spec.b)
            return 0.0


class EditSlots:
    """At most one write in flight per script; counts the writes turned away."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: set[tuple[str, str | None, str]] = set()
        self.rejected = 0
        self.admitted = 0

    @contextmanager
    def hold(self, key: tuple[str, str | None, str]) -> Iterator[bool]:
        """Yields ``True`` with the script's slot held, ``False`` when another write holds it."""
        with self._lock:
            if key in self._busy:
                self.rejected += 1
                admitted = False
            else:
                self._busy.add(key)
                self.admitted += 1
                admitted = True
        try:
            yield admitted
        finally:
            if admitted:
                with self._lock:
                    self._busy.discard(key)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"in_flight": len(self._busy), "concurrent_edit_429s": self.rejected, "writes": self.admitted}

    def reset_counts(self) -> None:
        with self._lock:
            self.rejected = 0
            self.admitted = 0
