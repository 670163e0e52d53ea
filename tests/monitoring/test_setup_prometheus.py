"""scripts/setup-prometheus.sh: quick when installed, never fails a developer's setup, fatal in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.monitoring.prom_tools import ROOT

SCRIPT = ROOT / "scripts" / "setup-prometheus.sh"


def _run(path: str, **env: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash is not None
    return subprocess.run(
        [bash, str(SCRIPT)], env={"PATH": path, **env}, capture_output=True, text=True, timeout=120, check=False
    )


def _bare_path(tmp_path: Path) -> str:
    """A PATH with a shell and coreutils but neither Prometheus nor apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "id", "head"):
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_without_prometheus_or_apt_a_developer_setup_goes_on_and_says_the_tests_will_skip(tmp_path: Path) -> None:
    done = _run(_bare_path(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "the Prometheus tests will skip" in done.stderr
    assert "apt-get install prometheus" in done.stderr


def test_without_prometheus_or_apt_ci_fails(tmp_path: Path) -> None:
    done = _run(_bare_path(tmp_path), CI="true")
    assert done.returncode == 1
    assert "CI=true" in done.stderr


def test_when_installed_it_only_reports_the_version() -> None:
    if not (shutil.which("promtool") and shutil.which("prometheus")):
        pytest.skip("promtool/prometheus not installed here")
    done = _run(os.environ["PATH"])
    assert done.returncode == 0, done.stderr
    assert "already installed" in done.stdout
