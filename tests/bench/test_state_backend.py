"""The state-backend benchmark at a tiny size, so that it cannot rot; it pins counts, not timings."""

from __future__ import annotations

from bench.state_backend import format_result, run


def test_the_benchmark_counts_no_write_for_an_unchanged_cycle_and_one_for_a_single_rotation() -> None:
    result = run(300, 4, 100)
    by_step = {step.what: step.puts for step in result.steps}
    assert by_step["unchanged cycle"] == 0
    assert by_step["rotation of 1 secret on 1 script(s)"] == 1
    assert result.secrets_needed == 1
    assert all(0 < kib <= 512 for kib in result.secret_kib)
    assert "bytes per binding record" in format_result(result)
