"""The production overlay ships the Grafana dashboard as a ConfigMap the Grafana sidecar picks up."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.deploy.test_manifests import DEPLOY, docs, pytestmark  # noqa: F401 - pytestmark: skip without kubectl

DASHBOARD = DEPLOY / "grafana" / "syncd-dashboard.json"
SYNC_SCRIPT = DEPLOY / "components" / "grafana" / "sync-dashboard.py"


def test_production_ships_the_dashboard_for_the_grafana_sidecar() -> None:
    found = [d for d in docs("overlays/production") if d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    assert len(found) == 1, f"expected one ConfigMap labelled grafana_dashboard: '1', found {len(found)}"
    (config_map,) = found
    assert config_map["kind"] == "ConfigMap"
    assert config_map["metadata"]["namespace"] == "syncd"
    (name,) = config_map["data"]
    assert name.endswith(".json")
    assert json.loads(config_map["data"][name]) == json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_dashboard_configmap_is_generated_from_the_dashboard() -> None:
    done = subprocess.run(
        [sys.executable, str(SYNC_SCRIPT), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"{done.stderr} (run python {SYNC_SCRIPT.relative_to(DEPLOY.parent)})"
