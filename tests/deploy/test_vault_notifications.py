"""The vault-notifications component opens syncd's audit-socket listener to Vault and to Vault only.

``deploy/components/vault-notifications`` adds the ``audit`` port (9000) to the container and the
headless Service, appends ``[notifications] audit_listen`` to whatever config.toml the overlay
renders, and admits TCP 9000 from a Vault peer that each overlay must set. The production overlay
includes it; a throwaway overlay of base + component shows it works on any config.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from syncd.config import Settings, parse_config
from tests.deploy.test_manifests import (
    DEPLOY,
    KUBECTL,
    PLACEHOLDER_VAULT_CIDR,
    _ports,
    container,
    one,
    settings,
    yaml,
)

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize) is not installed")

PRODUCTION = "overlays/production"
COMPONENT = DEPLOY / "components" / "vault-notifications"
AUDIT_PORT = 9000

Doc = dict[str, Any]


def audit_rules(policy: Doc) -> list[Doc]:
    return [
        r
        for r in policy["spec"].get("ingress", [])
        if any(p.get("port") in (AUDIT_PORT, "audit") for p in r.get("ports", []))
    ]


def open_peer_problems(rule: Doc) -> list[str]:
    """Why an ingress rule admits more than a named set of peers (an empty list: it does not)."""
    peers = rule.get("from")
    if not peers:
        return ["no 'from': every source may connect"]
    problems = []
    for peer in peers:
        block = peer.get("ipBlock")
        if block is not None:
            network = ipaddress.ip_network(block["cidr"], strict=False)
            if network.prefixlen == 0 or network.is_global:
                problems.append(f"ipBlock {block['cidr']} is not a private range")
            if block["cidr"] == PLACEHOLDER_VAULT_CIDR:
                problems.append(f"ipBlock {block['cidr']} is the placeholder, not Vault")
        elif peer.get("namespaceSelector") == {} and not peer.get("podSelector"):
            problems.append("an empty namespaceSelector admits every namespace")
        elif not peer.get("namespaceSelector") and not peer.get("podSelector"):
            problems.append(f"peer {peer} selects nothing specific")
    return problems


def render(path: Path) -> list[Doc]:
    assert KUBECTL is not None
    done = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, f"kubectl kustomize {path} failed: {done.stderr}"
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def without_notifications(s: Settings) -> dict[str, Any]:
    return s.model_dump(exclude={"notifications"})


# --- production overlay -------------------------------------------------------------------------


def test_production_container_and_service_expose_the_audit_port() -> None:
    ports = {p["name"]: p for p in container(PRODUCTION)["ports"]}
    assert ports["audit"] == {"name": "audit", "containerPort": AUDIT_PORT, "protocol": "TCP"}
    service = one(PRODUCTION, "Service")
    assert service["spec"]["clusterIP"] == "None", "Vault connects to the pod via the headless Service"
    by_name = {p["name"]: p for p in service["spec"]["ports"]}
    assert by_name["audit"]["port"] == AUDIT_PORT and by_name["audit"]["targetPort"] == "audit"
    assert service["spec"]["ports"][0]["name"] == "http", "http stays the Service's first port"
    (endpoint,) = one(PRODUCTION, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["port"] == "http", "Prometheus must not scrape the audit port"


def test_production_config_listens_for_vault_on_the_container_port_and_still_parses() -> None:
    s = settings(PRODUCTION)  # parse_config: raises ConfigError if the appended table broke the file
    assert s.notifications.audit_listen == f"0.0.0.0:{AUDIT_PORT}"
    host, _, port = s.notifications.audit_listen.rpartition(":")
    assert host == "0.0.0.0", "the listener must accept connections from outside the pod"
    (container_port,) = [p["containerPort"] for p in container(PRODUCTION)["ports"] if p["name"] == "audit"]
    assert int(port) == container_port


def test_production_config_is_the_overlays_file_plus_only_the_notifications_table() -> None:
    own_file = DEPLOY / PRODUCTION / "config.toml"
    own = parse_config(own_file.read_text(encoding="utf-8"), str(own_file))
    assert own.notifications.audit_listen is None, "the overlay's file sets audit_listen itself: drop one of the two"
    assert without_notifications(settings(PRODUCTION)) == without_notifications(own)


def test_production_admits_the_audit_port_only_from_vault() -> None:
    policy = one(PRODUCTION, "NetworkPolicy")
    (rule,) = audit_rules(policy)
    assert _ports(rule) == {("TCP", AUDIT_PORT)}, "the audit rule opens other ports too"
    assert open_peer_problems(rule) == []
    for other in policy["spec"]["ingress"]:
        if other is not rule:
            assert ("TCP", AUDIT_PORT) not in _ports(other) and other.get("ports"), f"{other} also admits port 9000"


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"ports": [{"port": AUDIT_PORT}]}, "no 'from'"),
        ({"from": [], "ports": [{"port": AUDIT_PORT}]}, "no 'from'"),
        ({"from": [{"namespaceSelector": {}}], "ports": [{"port": AUDIT_PORT}]}, "every namespace"),
        ({"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": AUDIT_PORT}]}, "not a private range"),
        ({"from": [{"ipBlock": {"cidr": "8.8.8.0/24"}}], "ports": [{"port": AUDIT_PORT}]}, "not a private range"),
        ({"from": [{"ipBlock": {"cidr": PLACEHOLDER_VAULT_CIDR}}], "ports": [{"port": AUDIT_PORT}]}, "placeholder"),
    ],
)
def test_open_peer_check_catches_an_audit_rule_open_to_more_than_vault(rule: Doc, problem: str) -> None:
    assert any(problem in p for p in open_peer_problems(rule))


def test_open_peer_check_accepts_vault_pods_and_a_private_range() -> None:
    vault_pods = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "vault"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "vault"}},
    }
    assert open_peer_problems({"from": [vault_pods, {"ipBlock": {"cidr": "10.40.12.0/28"}}]}) == []


# --- the component on its own -------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_with_component(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    """An overlay of the base and the component alone, in a temporary directory (the base's config)."""
    overlay = tmp_path_factory.mktemp("overlay")
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(DEPLOY / "base", overlay)],
        "components": [os.path.relpath(COMPONENT, overlay)],
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    return render(overlay)


def test_component_appends_the_listener_to_the_base_config_without_changing_the_rest(
    base_with_component: list[Doc],
) -> None:
    (config_map,) = [d for d in base_with_component if d["kind"] == "ConfigMap"]
    text = config_map["data"]["config.toml"]
    base_text = (DEPLOY / "base" / "config.toml").read_text(encoding="utf-8")
    assert text.startswith(base_text), "the component must append, not rewrite, the overlay's config"
    s = parse_config(text, "base+vault-notifications:config.toml")
    assert s.notifications.audit_listen == f"0.0.0.0:{AUDIT_PORT}"
    assert without_notifications(s) == without_notifications(settings("base"))
    assert config_map["metadata"]["name"] != one("base", "ConfigMap")["metadata"]["name"], (
        "the ConfigMap's hash suffix must change so the pod restarts with the listener on"
    )


def test_component_leaves_only_placeholder_vault_peer_for_the_overlay_to_replace(
    base_with_component: list[Doc],
) -> None:
    (policy,) = [d for d in base_with_component if d["kind"] == "NetworkPolicy"]
    (rule,) = audit_rules(policy)
    assert rule["from"] == [{"ipBlock": {"cidr": PLACEHOLDER_VAULT_CIDR}}]
    assert any("placeholder" in p for p in open_peer_problems(rule))
    assert not [d for d in base_with_component if d["metadata"]["name"] == "syncd-notifications-snippet"], (
        "the snippet ConfigMap is local-config and must not be applied"
    )


# --- with the ha component ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ha_with_component(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    """Base + components/ha + this component, in the order its kustomization.yaml asks for."""
    overlay = tmp_path_factory.mktemp("ha-overlay")
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(DEPLOY / "base", overlay)],
        "components": [os.path.relpath(DEPLOY / "components" / "ha", overlay), os.path.relpath(COMPONENT, overlay)],
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    return render(overlay)


def test_with_ha_the_deployments_pods_declare_the_port_their_config_listens_on(ha_with_component: list[Doc]) -> None:
    kinds = [d["kind"] for d in ha_with_component]
    assert "StatefulSet" not in kinds
    (deployment,) = [d for d in ha_with_component if d["kind"] == "Deployment"]
    (syncd,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "syncd"]
    assert [p["name"] for p in syncd["ports"]] == ["http", "audit"]
    assert syncd["ports"][1] == {"name": "audit", "containerPort": AUDIT_PORT, "protocol": "TCP"}
    (config_map,) = [d for d in ha_with_component if d["kind"] == "ConfigMap"]
    text = config_map["data"]["config.toml"]
    assert f'audit_listen = "0.0.0.0:{AUDIT_PORT}"' in text and "[leader_election]" in text, "both snippets appended"
    (service,) = [d for d in ha_with_component if d["kind"] == "Service"]
    assert [p["name"] for p in service["spec"]["ports"]] == ["http", "audit"]
    (policy,) = [d for d in ha_with_component if d["kind"] == "NetworkPolicy"]
    (rule,) = audit_rules(policy)
    assert rule["from"] == [{"ipBlock": {"cidr": PLACEHOLDER_VAULT_CIDR}}]
