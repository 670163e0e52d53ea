"""The real ``helm`` on the chart ``deploy/helm/syncd``, and ``kubernetes-validate`` on what it renders.

``helm`` comes from ``scripts/setup-helm.sh`` (``.tools/bin/helm``), else ``$HELM`` or the PATH.
Without it the helm tests skip, naming the reason, except under CI=true, which installs it: there
they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped,unused-ignore]
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "syncd"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
KUBERNETES_VERSION = "1.32.0"  # as deploy/validate.sh
NO_SCHEMA_GROUP = "monitoring.coreos.com/"  # Prometheus Operator kinds: kubernetes-validate has no schema

Doc = dict[str, Any]


def helm_binary() -> str | None:
    for candidate in (os.environ.get("HELM"), str(ROOT / ".tools" / "bin" / "helm"), shutil.which("helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_helm() -> str:
    helm = helm_binary()
    if helm is None:
        reason = "helm is not installed (bash scripts/setup-helm.sh puts it in .tools/bin)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true, where scripts/setup-dev.sh installs it, must run the helm tests")
        pytest.skip(reason)
    return helm


def run_helm(*args: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    helm = require_helm()
    return subprocess.run(
        [helm, *args, str(chart)],  # the chart (a directory or a packaged .tgz) last
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HELM_CACHE_HOME": str(ROOT / ".tools" / "helm-cache")},
    )


def value_args(values: Sequence[Path] = (), set_values: Sequence[str] = (), set_files: Sequence[str] = ()) -> list[str]:
    args: list[str] = []
    for path in values:
        args += ["-f", str(path)]
    for item in set_values:
        args += ["--set", item]
    for item in set_files:
        args += ["--set-file", item]
    return args


def template(
    values: Sequence[Path] = (),
    set_values: Sequence[str] = (),
    set_files: Sequence[str] = (),
    namespace: str = "syncd",
    chart: Path = CHART,
) -> list[Doc]:
    """``helm template syncd CHART`` with these values, as parsed documents."""
    done = run_helm(
        "template", "syncd", "--namespace", namespace, *value_args(values, set_values, set_files), chart=chart
    )
    assert done.returncode == 0, f"helm template failed: {done.stderr}"
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def refused(set_values: Sequence[str]) -> str:
    """helm's error for values the chart must refuse (fails the test if helm renders them)."""
    done = run_helm("template", "syncd", *value_args(set_values=set_values))
    assert done.returncode != 0, f"helm accepted {set_values}"
    return done.stderr


def validation_problems(docs: Sequence[Doc]) -> list[str]:
    """What kubernetes-validate --strict finds wrong (a Prometheus Operator kind may only lack a schema)."""
    problems = []
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError as exc:
            if not str(doc.get("apiVersion", "")).startswith(NO_SCHEMA_GROUP):
                problems.append(f"{where}: no schema ({exc})")
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{where}: {exc.message} at {list(exc.path)}")
    return problems


def only(docs: Sequence[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(docs: Sequence[Doc]) -> list[str]:
    return sorted(d["kind"] for d in docs)
