"""The write-path benchmark at a tiny size, so that it cannot rot.

Each scenario runs for real (devstack subprocess, syncd as ``syncd run`` builds it), on a few
scripts with a short write latency. Only what the scenarios report about correctness is pinned (no
429, every mapping converged, the healthy scripts in the same cycle, exact metadata reads); their
timings are the benchmark's business, not the test's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.write_path import build_parser, fanout, initial_sync, isolation

CORRECTNESS = ("failed", "x 429", "did not", "metadata reads")


def correctness(problems: list[str]) -> list[str]:
    """The problems that are not about speed (a loaded machine may miss any time or RSS target)."""
    return [p for p in problems if any(word in p for word in CORRECTNESS)]


@pytest.mark.timeout(120)
def test_fanout_writes_every_script_without_a_429(tmp_path: Path) -> None:
    args = build_parser().parse_args(["fanout", "--scripts", "12", "--latency", "0.05", "--concurrency", "4"])
    assert correctness(fanout(args, tmp_path)) == []


@pytest.mark.timeout(120)
def test_isolation_converges_the_healthy_scripts_in_the_same_cycle(tmp_path: Path) -> None:
    args = build_parser().parse_args(["isolation", "--isolation-scripts", "4", "--cycle-timeout", "6"])
    assert correctness(isolation(args, tmp_path)) == []


@pytest.mark.timeout(120)
def test_initial_sync_reads_each_secret_s_metadata_once(tmp_path: Path) -> None:
    args = build_parser().parse_args(["initial-sync", "--paths", "150"])
    assert correctness(initial_sync(args, tmp_path)) == []
