"""The container image, built from the Dockerfile and run the way the manifests run it.

``scripts/build-image.sh`` builds the image (podman, or docker where its daemon answers), writes
the SBOM, then runs the image read-only as UID 10001 with every capability dropped and the state
volume mounted, against the devstack on loopback: ``--version``, ``check``, ``once`` (a seeded
secret reaches the Cloudflare emulator) and ``run`` until SIGTERM, which must exit 0. The script
fails on the first step that does not hold; this test runs it and reads what it reports.

Where no container engine is set up (``scripts/setup-podman.sh`` installs one on Debian as root)
the test skips, naming the reason; under CI=true, which installs podman, it fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.test_locks import lock

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/syncd:test"
SBOM = ROOT / "dist" / "syncd-sbom.cdx.json"


def engine_missing() -> str | None:
    """Why no image can be built here (None: it can)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False).returncode == 0:
        return None
    if not shutil.which("podman"):
        return "no container engine: podman is not installed (bash scripts/setup-podman.sh) and no docker daemon"
    if not (ROOT / ".tools" / "podman" / "containers.conf").is_file():
        return "podman is not set up for this host yet: run bash scripts/setup-podman.sh"
    return None


@pytest.fixture(scope="module")
def built() -> str:
    reason = engine_missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: .ci/run installs podman, so the image must be built)")
        pytest.skip(reason)
    done = subprocess.run(
        ["bash", "scripts/build-image.sh"],
        cwd=ROOT,
        env={**os.environ, "IMAGE": IMAGE},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"build-image.sh failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.mark.timeout(960)
def test_the_image_builds_and_runs_read_only_as_10001_against_the_devstack(built: str) -> None:
    for step in (
        "syncd --version in the image: syncd ",
        "syncd check: ",
        "syncd once: exit 0, API_KEY pushed to the Worker, state written to the volume",
        "syncd run: /readyz, /healthz and /metrics answer",
        "syncd run: SIGTERM -> exit 0",
        f"build-image: ok: {IMAGE}",
    ):
        assert step in built, f"missing step {step!r} in:\n{built}"
    assert "image-check-canary-value" not in built


@pytest.mark.timeout(960)
def test_the_sbom_lists_exactly_the_locked_runtime_distributions(built: str) -> None:
    sbom = json.loads(SBOM.read_text(encoding="utf-8"))
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["metadata"]["component"]["name"] == "syncd"
    listed = {c["name"].lower().replace("_", "-"): c["version"] for c in sbom["components"]}
    runtime = {name: version for name, (version, _) in lock("requirements-runtime.txt").items()}
    build_only = {"setuptools", "wheel", "packaging"}  # removed from the image's virtualenv after the build
    assert listed == {name: v for name, v in runtime.items() if name not in build_only}
    assert "pytest" not in listed and "pip" not in listed
