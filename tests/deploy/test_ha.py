"""The "ha" component (deploy/components/ha, rendered through deploy/overlays/ha).

Two replicas behind a Lease with their state in Secrets: the Deployment replaces the StatefulSet
and keeps its pod (security, probes, mounts), the Role names exactly the Lease and the state
Secrets the config uses (no create, list or watch), the manifests create those objects empty,
the config turns leader election and the Kubernetes state on, and no key is ever rendered.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import PurePosixPath
from typing import Any

import pytest

from syncd.config import Settings, parse_config
from tests.deploy.test_manifests import KUBECTL, _render, docs, one, security_problems

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize) is not installed")

HA = "overlays/ha"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
COMPONENT_PLACEHOLDER_API = "192.0.2.20/32"

Doc = dict[str, Any]


def pod(target: str = HA, kind: str = "Deployment") -> Doc:
    spec: Doc = one(target, kind)["spec"]["template"]["spec"]
    return spec


def syncd_container(spec: Doc) -> Doc:
    (found,) = [c for c in spec["containers"] if c["name"] == "syncd"]
    return dict(found)


def config_text() -> str:
    return str(one(HA, "ConfigMap")["data"]["config.toml"])


def ha_settings() -> Settings:
    text = config_text()
    if "state" not in Settings.model_fields:
        # [state] arrives with the kubernetes state backend (branch k8sstate); until that is
        # merged, check the rest of the file and leave [state] to test_state_tables.
        text = re.sub(r"(?ms)^\[state(\.[a-z]+)?\]\n.*?(?=^\[|\Z)", "", text)
    return parse_config(text, f"{HA}:config.toml")


def state_tables() -> Doc:
    state: Doc = tomllib.loads(config_text())["state"]
    return state


def test_a_deployment_of_two_replicas_replaces_the_statefulset() -> None:
    kinds = [d["kind"] for d in docs(HA)]
    assert "StatefulSet" not in kinds and "PersistentVolumeClaim" not in kinds
    deployment = one(HA, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert "volumeClaimTemplates" not in deployment["spec"]
    assert not security_problems(deployment)


def test_replicas_repel_each_other_and_one_always_stays() -> None:
    labels = one(HA, "Deployment")["spec"]["template"]["metadata"]["labels"]
    (term,) = pod()["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= labels.items()
    budget = one(HA, "PodDisruptionBudget")["spec"]
    assert budget["minAvailable"] == 1 and "maxUnavailable" not in budget


def test_the_pod_is_the_statefulsets_pod_without_the_state_volume() -> None:
    single, ha = pod("base", "StatefulSet"), pod()
    for field in ("securityContext", "terminationGracePeriodSeconds", "serviceAccountName", "enableServiceLinks"):
        assert ha[field] == single[field], field
    mine, theirs = syncd_container(ha), syncd_container(single)
    for field in ("image", "args", "ports", "startupProbe", "livenessProbe", "readinessProbe", "resources"):
        assert mine[field] == theirs[field], field
    assert mine["securityContext"] == theirs["securityContext"]
    mounts = {m["name"]: m for m in mine["volumeMounts"]}
    expected = {m["name"]: m for m in theirs["volumeMounts"] if m["name"] != "state"}
    assert {name: mounts[name] for name in expected} == expected
    assert set(mounts) - set(expected) == {"fingerprint-key", "kube-api-access"}


def test_identity_and_api_access_come_from_the_pod() -> None:
    spec = pod()
    env = {e["name"]: e for e in syncd_container(spec)["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert spec["automountServiceAccountToken"] is False
    assert one(HA, "ServiceAccount").get("automountServiceAccountToken") is False
    (mount,) = [m for m in syncd_container(spec)["volumeMounts"] if m["name"] == "kube-api-access"]
    assert mount["mountPath"] == SERVICE_ACCOUNT_DIR and mount["readOnly"] is True
    (volume,) = [v for v in spec["volumes"] if v["name"] == "kube-api-access"]
    sources = volume["projected"]["sources"]
    token = next(s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s)
    assert token["path"] == "token" and "audience" not in token  # the API server's own audience
    assert any(s.get("configMap", {}).get("name") == "kube-root-ca.crt" for s in sources)
    assert any(i["path"] == "namespace" for s in sources for i in s.get("downwardAPI", {}).get("items", []))


def test_role_names_exactly_the_lease_and_the_state_secrets_and_never_creates() -> None:
    settings = ha_settings()
    state = state_tables()
    prefix, count = state["kubernetes"]["secret_name_prefix"], state["kubernetes"]["secret_count"]
    state_names = [f"{prefix}-{i}" for i in range(count)]
    role = one(HA, "Role")
    by_resource = {(r["apiGroups"][0], r["resources"][0]): r for r in role["rules"]}
    assert set(by_resource) == {("coordination.k8s.io", "leases"), ("", "secrets")}
    lease_rule, secrets_rule = by_resource[("coordination.k8s.io", "leases")], by_resource[("", "secrets")]
    assert lease_rule["resourceNames"] == [settings.leader_election.lease_name]
    assert secrets_rule["resourceNames"] == state_names
    for rule in role["rules"]:
        assert len(rule["apiGroups"]) == 1 and len(rule["resources"]) == 1
        assert sorted(rule["verbs"]) == ["get", "update"]
    binding = one(HA, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "syncd"}
    namespace = one(HA, "Deployment")["metadata"]["namespace"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "syncd", "namespace": namespace}]


def test_the_manifests_create_the_lease_and_the_state_secrets_empty() -> None:
    settings = ha_settings()
    state = state_tables()
    (lease,) = [d for d in docs(HA) if d["kind"] == "Lease"]
    assert lease["metadata"]["name"] == settings.leader_election.lease_name and "spec" not in lease
    secrets = [d for d in docs(HA) if d["kind"] == "Secret"]
    names = [s["metadata"]["name"] for s in secrets]
    prefix, count = state["kubernetes"]["secret_name_prefix"], state["kubernetes"]["secret_count"]
    assert names == [f"{prefix}-{i}" for i in range(count)]
    for secret in secrets:
        assert "data" not in secret and "stringData" not in secret  # nothing to overwrite on re-apply
    assert "syncd-fingerprint-key" not in names, "the fingerprint key is created out of band, never rendered"
    text = _render(HA)[0]
    assert "REPLACE-ME" not in text and not re.search(r"hvs\.|-----BEGIN|Bearer ", text)


def test_config_enables_the_lease_the_kubernetes_state_and_the_mounted_fingerprint_key() -> None:
    settings = ha_settings()
    assert settings.leader_election.enabled
    assert settings.leader_election.namespace is None and settings.leader_election.identity is None
    assert state_tables()["backend"] == "kubernetes"
    key = settings.sync.fingerprint_key
    assert key is not None and key.file is not None
    (mount,) = [m for m in syncd_container(pod())["volumeMounts"] if m["name"] == "fingerprint-key"]
    (volume,) = [v for v in pod()["volumes"] if v["name"] == "fingerprint-key"]
    assert volume["secret"]["secretName"] == "syncd-fingerprint-key"
    assert PurePosixPath(str(key.file)) == PurePosixPath(mount["mountPath"]) / volume["secret"]["items"][0]["path"]


def test_network_policy_reaches_the_api_server_and_the_overlay_replaced_the_placeholder() -> None:
    policy = one(HA, "NetworkPolicy")
    rules = [r for r in policy["spec"]["egress"] if {p["port"] for p in r["ports"]} == {443, 6443}]
    assert len(rules) == 1
    cidrs = [peer["ipBlock"]["cidr"] for peer in rules[0]["to"]]
    assert cidrs and COMPONENT_PLACEHOLDER_API not in cidrs
