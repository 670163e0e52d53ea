"""The Helm chart deploy/helm/syncd, checked by the real helm and kubernetes-validate --strict.

Lint (strict), every rendering valid against Kubernetes' schemas, the values schema refusing typos
and wrong types, the values users set landing where they belong, the config parsing with syncd's
own loader, the packaged chart rendering the same, and the alert rules and dashboard coming from
the files the kustomize tree uses. tests/deploy/test_helm_parity.py compares it with kustomize.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from syncd.config import parse_config
from tests.deploy.helm_chart import (
    CHART,
    EXAMPLES,
    ROOT,
    Doc,
    kinds,
    only,
    refused,
    run_helm,
    template,
    validation_problems,
    value_args,
)
from tests.deploy.test_manifests import security_problems, yaml

pytestmark = pytest.mark.integration

ALL_FEATURES = [
    "serviceMonitor.enabled=true",
    "prometheusRule.enabled=true",
    "grafanaDashboard.enabled=true",
    "vaultNotifications.enabled=true",
]


def pod(docs: list[Doc]) -> Doc:
    workload = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
    assert len(workload) == 1
    spec: Doc = workload[0]["spec"]["template"]
    return spec


def syncd_container(docs: list[Doc]) -> Doc:
    (found,) = [c for c in pod(docs)["spec"]["containers"] if c["name"] == "syncd"]
    return dict(found)


def config_text(docs: list[Doc]) -> str:
    return str(only(docs, "ConfigMap", "syncd-config")["data"]["config.toml"])


# --- helm lint, and every rendering valid ---------------------------------------------------------


@pytest.mark.parametrize("values", [None, *EXAMPLES], ids=lambda p: p.name if p else "defaults")
def test_helm_lint_strict_passes(values: Path | None) -> None:
    done = run_helm("lint", "--strict", *value_args([values] if values else []))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("values", [None, *EXAMPLES], ids=lambda p: p.name if p else "defaults")
def test_every_rendering_is_valid_kubernetes(values: Path | None) -> None:
    docs = template([values] if values else [])
    assert {"ServiceAccount", "Service", "ConfigMap", "NetworkPolicy", "PodDisruptionBudget"} <= set(kinds(docs))
    assert validation_problems(docs) == []
    assert all(d["metadata"]["namespace"] == "syncd" for d in docs)
    workload = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
    assert len(workload) == 1 and security_problems(workload[0]) == []


def test_everything_on_at_once_is_valid_too() -> None:
    docs = template(set_values=[*ALL_FEATURES, "ha.enabled=true"])
    assert {"Deployment", "Role", "RoleBinding", "Lease", "ServiceMonitor", "PrometheusRule"} <= set(kinds(docs))
    assert validation_problems(docs) == []


@pytest.mark.parametrize(
    ("field", "value", "mentions"),
    [("port", "eighty", "eighty"), ("portt", 80, "portt")],  # a wrong type; a misspelt field (--strict)
)
def test_the_validator_catches_an_invalid_object(field: str, value: Any, mentions: str) -> None:
    broken = only(template(), "Service")
    broken["spec"]["ports"][0][field] = value
    problems = validation_problems([broken])
    assert any(mentions in p for p in problems), problems


# --- the values schema --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "mentions"),
    [
        (["serviceMonitor.enable=true"], "enable"),
        (["image.tga=1.2.3"], "tga"),
        (["replicaCount=2"], "replicaCount"),
        (["ha.replicas=two"], "ha/replicas"),
        (["ha.replicas=1"], "ha/replicas"),
        (["vaultNotifications.port=99999"], "vaultNotifications/port"),
        (["serviceMonitor.interval=30 seconds"], "serviceMonitor/interval"),
        (["image.pullPolicy=Sometimes"], "pullPolicy"),
        (["vaultNotifications.from=10.0.0.1/32"], "vaultNotifications/from"),
    ],
)
def test_the_schema_refuses_typos_and_wrong_types(values: list[str], mentions: str) -> None:
    error = refused(values)
    assert "schema" in error and mentions in error, error


def test_the_schema_refuses_a_string_where_a_boolean_belongs() -> None:
    done = run_helm("template", "syncd", "--set-string", "ha.enabled=true")
    assert done.returncode != 0 and "ha/enabled" in done.stderr, done.stderr


# --- the values users ask for --------------------------------------------------------------------


USER_VALUES: dict[str, Any] = {
    "env": {"HTTPS_PROXY": "http://proxy.internal:3128", "NO_PROXY": ".svc,.cluster.local"},
    "extraEnv": [{"name": "REGION", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['region']"}}}],
    "envFrom": [{"configMapRef": {"name": "proxy-settings"}}],
    "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
    "podAnnotations": {"example.com/team": "platform"},
    "podLabels": {"team": "platform"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["infra"]}]}]
            }
        }
    },
    "priorityClassName": "system-cluster-critical",
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}, "interval": "15s"},
    "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "cloudflare": {"existingSecret": "cf-api", "tokenKey": "api-token"},
    "serviceAccount": {"annotations": {"example.com/owner": "platform"}},
}


@pytest.fixture(scope="module")
def user_docs(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    values = tmp_path_factory.mktemp("values") / "user.yaml"
    values.write_text(yaml.safe_dump(USER_VALUES), encoding="utf-8")
    return template([values])


def test_user_values_land_in_the_pod(user_docs: list[Doc]) -> None:
    template_ = pod(user_docs)
    spec, container = template_["spec"], syncd_container(user_docs)
    env = {e["name"]: e for e in container["env"]}
    assert env["HTTPS_PROXY"]["value"] == "http://proxy.internal:3128" and env["NO_PROXY"]["value"]
    assert env["REGION"] == USER_VALUES["extraEnv"][0]
    assert env["PYTHONUNBUFFERED"]["value"] == "1", "the chart's own variables stay"
    assert container["envFrom"] == USER_VALUES["envFrom"]
    assert container["resources"] == USER_VALUES["resources"]
    assert template_["metadata"]["annotations"]["example.com/team"] == "platform"
    assert template_["metadata"]["labels"]["team"] == "platform"
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert spec[key] == USER_VALUES[key], key
    (volume,) = [v for v in spec["volumes"] if v["name"] == "cloudflare-token"]
    assert volume["secret"]["secretName"] == "cf-api"
    assert volume["secret"]["items"] == [{"key": "api-token", "path": "token"}]
    account = only(user_docs, "ServiceAccount")
    assert account["metadata"]["annotations"] == {"example.com/owner": "platform"}
    assert validation_problems(user_docs) == []


def test_monitoring_values_land_on_the_prometheus_objects(user_docs: list[Doc]) -> None:
    monitor = only(user_docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]
    service_labels = only(user_docs, "Service")["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()
    assert only(user_docs, "PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_security_contexts_can_be_tightened_and_a_weakened_one_is_visible() -> None:
    docs = template(set_values=["securityContext.readOnlyRootFilesystem=false", "podSecurityContext.runAsUser=0"])
    workload = only(docs, "StatefulSet")
    assert any("writable" in p for p in security_problems(workload))
    assert any("runAsUser" in p for p in security_problems(workload))


def test_ha_defaults_keep_replicas_apart_unless_affinity_is_given() -> None:
    default = pod(template(set_values=["ha.enabled=true"]))["spec"]
    (term,) = default["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    given = pod(template(set_values=["ha.enabled=true", "affinity.nodeAffinity.x=y"]))["spec"]
    assert given["affinity"] == {"nodeAffinity": {"x": "y"}}


# --- the config --------------------------------------------------------------------------------


def test_default_config_is_the_kustomize_bases() -> None:
    base = ROOT / "deploy" / "base" / "config.toml"
    rendered = parse_config(config_text(template()), "chart-defaults:config.toml")
    assert rendered == parse_config(base.read_text(encoding="utf-8"), str(base))


def test_ha_and_notifications_append_their_tables_and_the_config_still_parses() -> None:
    docs = template(set_values=["ha.enabled=true", "vaultNotifications.enabled=true"])
    s = parse_config(config_text(docs), "chart-ha-notifications:config.toml")
    assert s.leader_election.enabled and s.leader_election.lease_name == "syncd-leader"
    assert s.state.backend == "kubernetes" and s.state.kubernetes.secret_name_prefix == "syncd-state"
    assert s.notifications.audit_listen == "0.0.0.0:9000"
    role = only(docs, "Role")
    names = [n for rule in role["rules"] for n in rule["resourceNames"]]
    assert names == ["syncd-leader"] + [f"syncd-state-{i}" for i in range(s.state.kubernetes.secret_count)]
    key = s.sync.fingerprint_key
    assert key is not None and str(key.file) == "/etc/syncd/fingerprint/key"
    mounts = {m["name"]: m["mountPath"] for m in syncd_container(docs)["volumeMounts"]}
    assert mounts["fingerprint-key"] == "/etc/syncd/fingerprint" and "state" not in mounts
    assert [p["name"] for p in syncd_container(docs)["ports"]] == ["http", "audit"]


def test_a_changed_config_rolls_the_pods() -> None:
    before = pod(template())["metadata"]["annotations"]["checksum/config"]
    after = pod(template(set_values=["config=[vault]\naddress = 'https://other:8200'\n"]))["metadata"]["annotations"]
    assert after["checksum/config"] != before


def test_an_existing_config_map_replaces_the_rendered_one() -> None:
    docs = template(set_values=["existingConfigMap=my-syncd-config"])
    assert "ConfigMap" not in kinds(docs)
    (volume,) = [v for v in pod(docs)["spec"]["volumes"] if v["name"] == "config"]
    assert volume["configMap"]["name"] == "my-syncd-config"
    assert "checksum/config" not in pod(docs)["metadata"]["annotations"]


def test_no_secret_value_is_ever_rendered() -> None:
    docs = template(set_values=[*ALL_FEATURES, "ha.enabled=true"])
    for secret in (d for d in docs if d["kind"] == "Secret"):
        assert secret["metadata"]["name"].startswith("syncd-state-")
        assert "data" not in secret and "stringData" not in secret


# --- alert rules and dashboard: the kustomize tree's files, and they survive helm package -------------


def test_the_chart_carries_byte_copies_of_the_rules_and_the_dashboard() -> None:
    for source, copy in (
        (ROOT / "deploy" / "alerts" / "syncd-rules.yaml", CHART / "files" / "syncd-rules.yaml"),
        (ROOT / "deploy" / "grafana" / "syncd-dashboard.json", CHART / "files" / "syncd-dashboard.json"),
    ):
        assert copy.read_bytes() == source.read_bytes(), f"{copy} is stale: run the sync script named in its template"
        assert not copy.is_symlink(), "helm package does not follow a link out of the chart"


def test_packaged_chart_renders_the_rules_and_the_dashboard_from_those_files(tmp_path: Path) -> None:
    done = run_helm("package", "--destination", str(tmp_path))
    assert done.returncode == 0, done.stderr
    (package,) = tmp_path.glob("syncd-*.tgz")
    with tarfile.open(package) as archive:
        names = archive.getnames()
    assert "syncd/files/syncd-rules.yaml" in names and "syncd/values.schema.json" in names
    docs = template(set_values=ALL_FEATURES, chart=package)
    rules = yaml.safe_load((ROOT / "deploy" / "alerts" / "syncd-rules.yaml").read_text(encoding="utf-8"))
    assert only(docs, "PrometheusRule")["spec"]["groups"] == rules["groups"]
    dashboard = only(docs, "ConfigMap", "syncd-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    text = dashboard["data"]["syncd-dashboard.json"]
    assert text == (ROOT / "deploy" / "grafana" / "syncd-dashboard.json").read_text(encoding="utf-8")
    assert json.loads(text)["uid"] == "syncd-overview"


# --- the README's values table ------------------------------------------------------------------


def _value_names(schema: Doc, prefix: str = "") -> list[str]:
    """Dotted names of the values a user sets: the schema's closed objects are walked into."""
    names = []
    for key, node in schema.get("properties", {}).items():
        name = f"{prefix}{key}"
        if node.get("additionalProperties") is False and "properties" in node:
            names += _value_names(node, f"{name}.")
        else:
            names.append(name)
    return names


def test_the_readme_values_table_names_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    names = [n for n in _value_names(schema) if n != "global"]
    assert "ha.fingerprintKey.existingSecret" in names and "serviceMonitor.interval" in names
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("<!-- values-table") :].split("\n\n", 1)[0]
    missing = [n for n in names if f"`{n}`" not in table]
    assert missing == [], f"values missing from the README's values table: {missing}"
    defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert set(defaults) == set(schema["properties"]) - {"global"}, "values.yaml and its schema disagree"
