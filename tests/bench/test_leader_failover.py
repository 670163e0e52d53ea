"""The failover benchmark at tiny timings, so that it cannot rot (its figures are not asserted)."""

from __future__ import annotations

import pytest

from bench.leader_failover import main


def test_the_failover_benchmark_runs_and_reports_both_handovers(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--lease", "1.5", "--renew", "1", "--retry", "0.25", "--warmup", "1", "--deadline", "40"])
    out = capsys.readouterr().out
    assert code == 0
    assert "SIGKILL of the leader -> standby leads:" in out
    assert "SIGTERM of the leader -> standby leads:" in out
    assert "leaseTransitions 2" in out
