"""The Helm chart and the kustomize tree render the same objects for the same choices.

Each kustomize target is paired with the chart's values for the same choices (an example values
file and the target's own config.toml). Both renderings are reduced to what must agree and compared
whole: the set of (kind, name), and every object's body, so kinds, names, security contexts, RBAC
rules, probes, ports, volumes, NetworkPolicy rules, alert rules and the parsed config all match.

What may differ, and is left out before comparing: labels and annotations (helm adds its own),
the label selectors (the chart selects by name and release, so two releases can share a namespace;
test_selectors_select_the_pod checks they still select the pod), the ConfigMap's hash suffix
(kustomize's way to roll pods; the chart uses a checksum annotation), the namespace of a base
without one, the config's comments and table order (compared parsed), and the Namespace object of
the production overlay (helm installs into a namespace, it does not create it).
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.helm_chart import CHART, ROOT, Doc, template
from tests.deploy.test_manifests import KUBECTL, yaml
from tests.deploy.test_manifests import docs as kustomize_docs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize) is not installed"),
]

EXAMPLES = CHART / "examples"
# (kustomize target, the chart's values file for the same choices or None for the defaults)
PAIRS = [
    ("base", None),
    ("overlays/dev", EXAMPLES / "dev.yaml"),
    ("overlays/production", EXAMPLES / "production.yaml"),
    ("overlays/ha", EXAMPLES / "ha.yaml"),
]
_HASH_SUFFIX = re.compile(r"^(syncd-config)-[a-z0-9]{10}$")


def _unhashed(name: str) -> str:
    return _HASH_SUFFIX.sub(r"\1", name)


def _drop_match_labels(node: Any) -> None:
    """Replace every labelSelector/selector/podSelector's matchLabels with a marker, recursively."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("selector", "labelSelector", "podSelector") and isinstance(value, dict):
                node[key] = "<selects the pod>" if "matchLabels" in value or key == "selector" else value
            else:
                _drop_match_labels(value)
    elif isinstance(node, list):
        for item in node:
            _drop_match_labels(item)


def comparable(doc: Doc) -> Doc:
    doc = copy.deepcopy(doc)
    meta = doc["metadata"]
    meta.pop("labels", None)
    meta.pop("annotations", None)
    meta.pop("namespace", None)
    meta["name"] = _unhashed(meta["name"])
    kind = doc["kind"]
    if kind in ("StatefulSet", "Deployment"):
        spec = doc["spec"]
        spec.pop("selector")
        template_ = spec["template"]
        template_.pop("metadata")
        _drop_match_labels(template_["spec"].get("affinity", {}))
        for constraint in template_["spec"].get("topologySpreadConstraints", []):
            constraint["labelSelector"] = "<selects the pod>"
        for claim in spec.get("volumeClaimTemplates", []):
            claim["metadata"].pop("labels", None)
        for volume in template_["spec"]["volumes"]:
            if "configMap" in volume:
                volume["configMap"]["name"] = _unhashed(volume["configMap"]["name"])
    elif kind in ("Service", "PodDisruptionBudget", "ServiceMonitor"):
        doc["spec"].pop("selector")
    elif kind == "NetworkPolicy":
        doc["spec"].pop("podSelector")
    elif kind == "RoleBinding":
        for subject in doc["subjects"]:
            subject.pop("namespace", None)
    elif kind == "ConfigMap" and "config.toml" in doc.get("data", {}):
        doc["data"]["config.toml"] = tomllib.loads(doc["data"]["config.toml"])
    return doc


def by_key(docs: list[Doc] | tuple[Doc, ...]) -> dict[tuple[str, str], Doc]:
    return {(d["kind"], _unhashed(d["metadata"]["name"])): comparable(d) for d in docs if d["kind"] != "Namespace"}


def chart_docs(target: str, values: Path | None) -> list[Doc]:
    config = ROOT / "deploy" / target / "config.toml"
    return template([values] if values else [], set_files=[f"config={config}"])


@pytest.fixture(scope="module", params=PAIRS, ids=[target for target, _ in PAIRS])
def pair(request: pytest.FixtureRequest) -> tuple[dict[tuple[str, str], Doc], dict[tuple[str, str], Doc]]:
    target, values = request.param
    return by_key(kustomize_docs(target)), by_key(chart_docs(target, values))


def test_the_same_kinds_and_names(pair: tuple[dict[tuple[str, str], Doc], dict[tuple[str, str], Doc]]) -> None:
    kustomized, charted = pair
    assert sorted(charted) == sorted(kustomized)


FIELDS: dict[str, Callable[[Doc], Any]] = {
    "pod security context": lambda d: d["spec"]["template"]["spec"]["securityContext"],
    "container security context": lambda d: [c["securityContext"] for c in d["spec"]["template"]["spec"]["containers"]],
    "probes": lambda d: [
        {k: c.get(k) for k in ("startupProbe", "livenessProbe", "readinessProbe")}
        for c in d["spec"]["template"]["spec"]["containers"]
    ],
    "container ports": lambda d: [c["ports"] for c in d["spec"]["template"]["spec"]["containers"]],
    "volumes": lambda d: d["spec"]["template"]["spec"]["volumes"],
    "mounts": lambda d: [c["volumeMounts"] for c in d["spec"]["template"]["spec"]["containers"]],
}


def test_the_workloads_agree_field_by_field(
    pair: tuple[dict[tuple[str, str], Doc], dict[tuple[str, str], Doc]],
) -> None:
    """The pod's parts named one by one first, so a failure says which part drifted."""
    kustomized, charted = pair
    (key,) = [k for k in kustomized if k[0] in ("StatefulSet", "Deployment")]
    for what, field in FIELDS.items():
        assert field(charted[key]) == field(kustomized[key]), what


def test_every_object_agrees_whole(pair: tuple[dict[tuple[str, str], Doc], dict[tuple[str, str], Doc]]) -> None:
    kustomized, charted = pair
    for key in sorted(set(kustomized) & set(charted)):
        assert charted[key] == kustomized[key], f"{key} differs"


@pytest.mark.parametrize(("target", "values"), PAIRS, ids=[target for target, _ in PAIRS])
def test_selectors_select_the_pod(target: str, values: Path | None) -> None:
    docs = chart_docs(target, values)
    (workload,) = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
    labels = workload["spec"]["template"]["metadata"]["labels"].items()
    selectors = [workload["spec"]["selector"]["matchLabels"]]
    for doc in docs:
        if doc["kind"] in ("Service",):
            selectors.append(doc["spec"]["selector"])
        elif doc["kind"] in ("PodDisruptionBudget", "ServiceMonitor"):
            selectors.append(doc["spec"]["selector"]["matchLabels"])
        elif doc["kind"] == "NetworkPolicy":
            selectors.append(doc["spec"]["podSelector"]["matchLabels"])
    assert len(selectors) >= 4
    for selector in selectors:
        assert selector and selector.items() <= labels, f"{selector} does not select the pod {dict(labels)}"


def test_comparison_catches_a_drifted_probe() -> None:
    kustomized = by_key(kustomize_docs("base"))
    charted = by_key(chart_docs("base", None))
    key = ("StatefulSet", "syncd")
    charted[key]["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["periodSeconds"] = 16
    assert FIELDS["probes"](charted[key]) != FIELDS["probes"](kustomized[key])
    assert charted[key] != kustomized[key]


def test_ha_with_vault_notifications_agrees_with_both_components(tmp_path: Path) -> None:
    """base + components/ha + components/vault-notifications (in that order) against ha.enabled and
    vaultNotifications.enabled, both with their placeholder peers and the base's config."""
    deploy = ROOT / "deploy"
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "syncd",
        "resources": [os.path.relpath(deploy / "base", tmp_path)],
        "components": [
            os.path.relpath(deploy / "components" / "ha", tmp_path),
            os.path.relpath(deploy / "components" / "vault-notifications", tmp_path),
        ],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    kustomized = by_key(kustomize_docs(str(tmp_path)))
    charted = by_key(
        template(
            set_values=["ha.enabled=true", "vaultNotifications.enabled=true"],
            set_files=[f"config={deploy / 'base' / 'config.toml'}"],
        )
    )
    assert sorted(charted) == sorted(kustomized)
    for key in kustomized:
        assert charted[key] == kustomized[key], f"{key} differs"
