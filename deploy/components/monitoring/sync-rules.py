#!/usr/bin/env python3
"""Wrap deploy/alerts/syncd-rules.yaml (plain Prometheus rules) into prometheusrule.yaml.

Kustomize cannot embed one file's content into another object's field, so the PrometheusRule is
generated from the rules file, the single source of truth, and checked for drift; so is the byte
copy the Helm chart renders its PrometheusRule from (deploy/helm/syncd/files/syncd-rules.yaml):

    python deploy/components/monitoring/sync-rules.py           # rewrite prometheusrule.yaml
    python deploy/components/monitoring/sync-rules.py --check   # exit 1 if they differ

Needs PyYAML. Without the rules file there is nothing to wrap: --check reports it and passes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

HERE = Path(__file__).resolve().parent
RULES = HERE.parents[1] / "alerts" / "syncd-rules.yaml"
TARGET = HERE / "prometheusrule.yaml"
# The Helm chart carries a byte copy (helm cannot read files outside its own directory).
CHART_COPY = HERE.parents[1] / "helm" / "syncd" / "files" / "syncd-rules.yaml"
HEADER = """\
# GENERATED from deploy/alerts/syncd-rules.yaml by deploy/components/monitoring/sync-rules.py:
# edit the rules file, then rerun the script (deploy/validate.sh fails while they differ).
"""


def _str(dumper: Any, value: str) -> Any:
    """Multi-line strings (PromQL) as literal blocks, as a person would write them."""
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


yaml.SafeDumper.add_representer(str, _str)


def wrapped(rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "syncd",
            "labels": {"app.kubernetes.io/name": "syncd", "app.kubernetes.io/part-of": "syncd"},
        },
        "spec": {"groups": rules["groups"]},
    }


def main(argv: list[str]) -> int:
    check = "--check" in argv
    if not RULES.is_file():
        print(f"sync-rules: {RULES.name} not present; {TARGET.name} is maintained by hand")
        return 0
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    if not isinstance(rules, dict) or not isinstance(rules.get("groups"), list):
        print(f"sync-rules: {RULES} is not a Prometheus rules file (no top-level 'groups' list)", file=sys.stderr)
        return 1
    expected = wrapped(rules)
    if check:
        current = yaml.safe_load(TARGET.read_text(encoding="utf-8"))
        stale = [str(TARGET)] if current != expected else []
        if not CHART_COPY.is_file() or CHART_COPY.read_bytes() != RULES.read_bytes():
            stale.append(str(CHART_COPY))
        if stale:
            print(f"sync-rules: {', '.join(stale)} differ(s) from {RULES}; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(HEADER + yaml.safe_dump(expected, sort_keys=False, width=120), encoding="utf-8")
    CHART_COPY.write_bytes(RULES.read_bytes())
    print(f"sync-rules: wrote {TARGET} and {CHART_COPY}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
