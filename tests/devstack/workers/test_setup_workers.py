"""scripts/setup-workers.sh: quick when installed, never fails a developer's setup, fatal in CI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from syncd.devstack.workers.tools import TOOLS_DIR
from tests.devstack.workers.conftest import require_workerd, require_wrangler

ROOT = TOOLS_DIR.parent
SCRIPT = ROOT / "scripts" / "setup-workers.sh"


def _run(project: Path, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash is not None
    return subprocess.run(
        [bash, str(project / "scripts" / "setup-workers.sh")],
        env={"PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _bare(tmp_path: Path) -> tuple[Path, str]:
    """A copy of the script in an empty project, and a PATH with a shell and coreutils but no npm."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, project / "scripts" / "setup-workers.sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "uname", "dirname", "cat", "mkdir", "rm"):
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    return project, str(bin_dir)


def test_without_npm_a_developer_setup_goes_on_and_says_what_is_skipped(tmp_path: Path) -> None:
    project, path = _bare(tmp_path)
    done = _run(project, path)
    assert done.returncode == 0, done.stderr
    assert "npm not found" in done.stderr
    assert "without a Workers runtime" in done.stderr and "Workers tests will skip" in done.stderr
    assert not (project / ".tools" / ".stamp").exists()


def test_without_npm_ci_fails(tmp_path: Path) -> None:
    project, path = _bare(tmp_path)
    done = _run(project, path, CI="true")
    assert done.returncode == 1
    assert "CI=true" in done.stderr


@pytest.mark.integration
def test_when_installed_a_second_run_downloads_nothing_and_names_the_versions() -> None:
    require_workerd()
    require_wrangler()
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "already installed" in done.stdout
    assert "wrangler 4.164.0" in done.stdout
