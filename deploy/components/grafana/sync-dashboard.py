#!/usr/bin/env python3
"""Wrap deploy/grafana/syncd-dashboard.json into dashboard-configmap.yaml (Grafana sidecar ConfigMap).

Kustomize cannot load a file from outside a component's directory, so the ConfigMap is generated
from the dashboard JSON, the single source of truth, and checked for drift; so is the byte copy the
Helm chart renders its ConfigMap from (deploy/helm/syncd/files/syncd-dashboard.json):

    python deploy/components/grafana/sync-dashboard.py           # rewrite dashboard-configmap.yaml
    python deploy/components/grafana/sync-dashboard.py --check   # exit 1 if they differ

Needs PyYAML.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE.parents[1] / "grafana" / "syncd-dashboard.json"
TARGET = HERE / "dashboard-configmap.yaml"
# The Helm chart carries a byte copy (helm cannot read files outside its own directory).
CHART_COPY = HERE.parents[1] / "helm" / "syncd" / "files" / "syncd-dashboard.json"
KEY = "syncd-dashboard.json"
HEADER = """\
# GENERATED from deploy/grafana/syncd-dashboard.json by deploy/components/grafana/sync-dashboard.py:
# edit the dashboard, then rerun the script (deploy/validate.sh fails while they differ).
# The label grafana_dashboard: "1" is what Grafana's dashboard sidecar (kube-prometheus-stack:
# grafana.sidecar.dashboards) looks for; it must search this namespace (searchNamespace: ALL).
"""


def _str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


yaml.SafeDumper.add_representer(str, _str)


def wrapped(dashboard_text: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "syncd-grafana-dashboard",
            "labels": {
                "app.kubernetes.io/name": "syncd",
                "app.kubernetes.io/part-of": "syncd",
                "grafana_dashboard": "1",
            },
        },
        "data": {KEY: dashboard_text},
    }


def main(argv: list[str]) -> int:
    text = DASHBOARD.read_text(encoding="utf-8")
    try:
        json.loads(text)
    except ValueError as exc:
        print(f"sync-dashboard: {DASHBOARD} is not valid JSON: {exc}", file=sys.stderr)
        return 1
    expected = wrapped(text)
    if "--check" in argv:
        current = yaml.safe_load(TARGET.read_text(encoding="utf-8")) if TARGET.is_file() else None
        stale = [str(TARGET)] if current != expected else []
        if not CHART_COPY.is_file() or CHART_COPY.read_bytes() != DASHBOARD.read_bytes():
            stale.append(str(CHART_COPY))
        if stale:
            print(
                f"sync-dashboard: {', '.join(stale)} differ(s) from {DASHBOARD}; run {Path(__file__).name}",
                file=sys.stderr,
            )
            return 1
        return 0
    body = yaml.safe_dump(expected, sort_keys=False, width=120, allow_unicode=True)
    TARGET.write_text(HEADER + body, encoding="utf-8")
    CHART_COPY.write_bytes(DASHBOARD.read_bytes())
    print(f"sync-dashboard: wrote {TARGET} and {CHART_COPY}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
