"""``scripts/setup-dev.sh``: a re-run with nothing changed installs nothing and prints one line.

The script runs in a scratch copy of the project whose ``.venv/bin/python`` is a stub that records
every call (pip installs included) and answers the venv health probe as told, so the decisions
(skip, install on a fresh machine, on changed dependencies, on a broken venv) are pinned without
a 30-second real install.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STUB = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/calls.log"
if [ "${1:-}" = "-" ]; then cat >/dev/null; exit "$(cat "$(dirname "$0")/intact_rc")"; fi
echo "a noisy setuptools banner"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup-dev.sh", tmp_path / "scripts" / "setup-dev.sh")
    shutil.copy(ROOT / "scripts" / "pip.lock", tmp_path / "scripts" / "pip.lock")
    # Prometheus has its own script and tests (tests/monitoring): here a stand-in that says nothing.
    (tmp_path / "scripts" / "setup-prometheus.sh").write_text("exit 0\n")
    (tmp_path / "scripts" / "setup-workers.sh").write_text("exit 0\n")  # its own tests: tests/devstack/workers
    (tmp_path / "scripts" / "setup-helm.sh").write_text("exit 0\n")  # tested by tests/deploy/test_helm_*.py
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "constraints.txt").write_text("pydantic==2.14.4\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(STUB)
    (bin_dir / "python").chmod(0o755)
    (bin_dir / "intact_rc").write_text("0")
    return tmp_path


def _run(project: Path) -> tuple[str, list[str]]:
    calls = project / ".venv" / "bin" / "calls.log"
    calls.unlink(missing_ok=True)
    done = subprocess.run(
        ["bash", "scripts/setup-dev.sh"], cwd=project, capture_output=True, text=True, timeout=30, check=True
    )
    installs = [c for c in calls.read_text().splitlines() if "pip install" in c] if calls.exists() else []
    return done.stdout + done.stderr, installs


def test_second_run_with_nothing_changed_installs_nothing_and_is_quiet(project: Path) -> None:
    output, installs = _run(project)
    # pip itself, then every dependency from the hashed lock, then syncd alone (pip refuses an
    # editable, unhashed requirement in hash-checking mode)
    assert len(installs) == 3
    assert "--require-hashes -r scripts/pip.lock" in installs[0]
    assert "--require-hashes -r constraints.txt" in installs[1]
    assert "--no-deps --no-build-isolation -e .[dev]" in installs[2]
    assert "banner" not in output  # the install's own output goes to .venv/setup.log
    output, installs = _run(project)
    assert installs == []
    assert output.strip().splitlines() == [
        "setup-dev: .venv is up to date (pyproject.toml and constraints.txt unchanged)"
    ]


@pytest.mark.parametrize("change", ["constraints.txt", "pyproject.toml", "broken venv"])
def test_a_change_or_a_broken_venv_installs_again(project: Path, change: str) -> None:
    _run(project)
    if change == "broken venv":
        (project / ".venv" / "bin" / "intact_rc").write_text("1")
    else:
        with (project / change).open("a") as f:
            f.write("# changed\n")
    _, installs = _run(project)
    assert len(installs) == 3


def test_a_failed_install_leaves_no_stamp_and_shows_its_log(project: Path) -> None:
    python = project / ".venv" / "bin" / "python"
    python.write_text(STUB + "exit 3\n")
    done = subprocess.run(
        ["bash", "scripts/setup-dev.sh"], cwd=project, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 1
    assert "a noisy setuptools banner" in done.stderr and "install failed" in done.stderr
    assert not (project / ".venv" / ".setup-stamp").exists()
