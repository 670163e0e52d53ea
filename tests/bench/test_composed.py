"""The composed-values benchmark at a tiny size, so that it cannot rot: templated mappings of two
sources next to plain ones (clean no-op cycles, one metadata read per source), and a static role's
scheduled rotations reaching every Worker with one Vault read per rotation. No timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.composed import bench_rotation, bench_templates

pytestmark = pytest.mark.integration


def test_templated_and_plain_worlds_are_clean_no_ops_once_synced(tmp_path: Path) -> None:
    result = bench_templates(20, 1, 4, tmp_path)
    problems = [p for p in result.problems if "more CPU" not in p]  # CPU at this size says nothing
    assert problems == []
    runs = {(r.world, r.what): r for r in result.runs}
    assert runs[("templated", "unchanged 1")].metadata_reads == 40
    assert runs[("plain", "unchanged 1")].metadata_reads == 20
    assert runs[("templated", "initial")].cloudflare_calls == runs[("plain", "initial")].cloudflare_calls == 2
    assert set(result.values_us) == {"plain", "templated"}


def test_scheduled_rotations_reach_every_worker_with_one_read_each(tmp_path: Path) -> None:
    result = bench_rotation(2, 5, 2, tmp_path)
    assert [p for p in result.problems if "p99" not in p] == []
    assert len(result.lags) == result.rotations >= 2
    assert result.static_creds_reads <= result.rotations + 2  # start-up, one per rotation, maybe one more due
