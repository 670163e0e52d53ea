"""The rendered Kubernetes manifests keep syncd's deployment invariants.

Every kustomize target (base and overlays) is rendered with ``kubectl kustomize`` and checked:
one replica with its own volume, the restricted security context, probes on the right paths,
no Secret data, the config wired to the mounted files, a NetworkPolicy that allows only
Vault, the Cloudflare API and DNS, and a Vault policy that grants exactly what the mappings read.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from syncd.config import CloudflareApiToken, KubernetesAuth, Settings, parse_config
from tests.deploy import dockerfile

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read rendered manifests (add it to the test extra)")
KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize) is not installed")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TARGETS = ["base", "overlays/dev", "overlays/production"]
OVERLAYS = [t for t in TARGETS if t.startswith("overlays/")]
PLACEHOLDER_VAULT_CIDR = "192.0.2.10/32"
PRIVATE_RANGES = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}

Doc = dict[str, Any]


@functools.cache
def _render(target: str) -> tuple[str, tuple[Doc, ...]]:
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "kustomize", str(DEPLOY / target)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, f"kubectl kustomize {target} failed: {done.stderr}"
    return done.stdout, tuple(d for d in yaml.safe_load_all(done.stdout) if d)


def docs(target: str) -> tuple[Doc, ...]:
    return _render(target)[1]


def one(target: str, kind: str) -> Doc:
    found = [d for d in docs(target) if d["kind"] == kind]
    assert len(found) == 1, f"{target}: expected one {kind}, found {len(found)}"
    return found[0]


def config_map(target: str) -> Doc:
    """The ConfigMap holding syncd's config.toml (an overlay may add others, e.g. the Grafana dashboard)."""
    found = [d for d in docs(target) if d["kind"] == "ConfigMap" and "config.toml" in d.get("data", {})]
    assert len(found) == 1, f"{target}: expected one ConfigMap with config.toml, found {len(found)}"
    return found[0]


def pod_spec(target: str) -> Doc:
    spec: Doc = one(target, "StatefulSet")["spec"]["template"]["spec"]
    return spec


def container(target: str) -> Doc:
    main: list[Doc] = [c for c in pod_spec(target)["containers"] if c["name"] == "syncd"]
    assert len(main) == 1
    return main[0]


def settings(target: str) -> Settings:
    text = config_map(target)["data"]["config.toml"]
    return parse_config(text, f"{target}:config.toml")


def mount_path(target: str, volume: str) -> PurePosixPath:
    (mount,) = [m for m in container(target)["volumeMounts"] if m["name"] == volume]
    return PurePosixPath(mount["mountPath"])


def volume(target: str, name: str) -> Doc:
    found: list[Doc] = [v for v in pod_spec(target)["volumes"] if v["name"] == name]
    assert len(found) == 1, f"{target}: no single volume {name!r}"
    return found[0]


def security_problems(statefulset: Doc) -> list[str]:
    """What makes a StatefulSet fall short of the restricted profile syncd promises."""
    spec = statefulset["spec"]["template"]["spec"]
    pod = spec.get("securityContext", {})
    problems = []
    if pod.get("runAsNonRoot") is not True:
        problems.append("pod: runAsNonRoot is not true")
    if not isinstance(pod.get("runAsUser"), int) or pod["runAsUser"] == 0:
        problems.append("pod: runAsUser is not a non-root UID")
    if not pod.get("fsGroup"):
        problems.append("pod: no fsGroup (the state volume would not be writable)")
    if pod.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("pod: seccompProfile is not RuntimeDefault")
    for c in spec["containers"] + spec.get("initContainers", []):
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{c['name']}: root filesystem is writable")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']}: privilege escalation allowed")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            problems.append(f"{c['name']}: capabilities not dropped to none")
        if sc.get("privileged"):
            problems.append(f"{c['name']}: privileged")
        if sc.get("runAsUser", pod.get("runAsUser")) == 0:
            problems.append(f"{c['name']}: runs as root")
    return problems


# --- shape --------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_runs_as_one_replica_statefulset_with_its_own_state_volume(target: str) -> None:
    kinds = [d["kind"] for d in docs(target)]
    assert "Deployment" not in kinds, "a Deployment can run two writers of the SQLite state"
    sts = one(target, "StatefulSet")
    assert sts["spec"]["replicas"] == 1
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert mount_path(target, claim["metadata"]["name"]) == PurePosixPath("/var/lib/syncd")
    assert settings(target).sync.state_path.parent == Path(str(mount_path(target, claim["metadata"]["name"])))
    service = one(target, "Service")
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("target", TARGETS)
def test_services_and_policies_select_the_syncd_pod(target: str) -> None:
    labels = one(target, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Service": one(target, "Service")["spec"]["selector"],
        "NetworkPolicy": one(target, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        "PodDisruptionBudget": one(target, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        "StatefulSet": one(target, "StatefulSet")["spec"]["selector"]["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert selector and selector.items() <= labels.items(), f"{kind} selector {selector} misses the pod {labels}"


@pytest.mark.parametrize("target", TARGETS)
def test_disruption_budget_lets_node_drains_evict_the_single_pod(target: str) -> None:
    spec = one(target, "PodDisruptionBudget")["spec"]
    assert spec.get("maxUnavailable") == 1
    assert "minAvailable" not in spec


# --- security -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_pod_meets_the_restricted_security_profile(target: str) -> None:
    assert security_problems(one(target, "StatefulSet")) == []


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("securityContext", "runAsUser"), 0, "runAsUser"),
        (("securityContext", "seccompProfile", "type"), "Unconfined", "seccomp"),
        (("containers", 0, "securityContext", "readOnlyRootFilesystem"), False, "writable"),
        (("containers", 0, "securityContext", "allowPrivilegeEscalation"), True, "escalation"),
        (("containers", 0, "securityContext", "capabilities", "drop"), ["NET_RAW"], "capabilities"),
    ],
)
def test_security_check_catches_a_weakened_pod(path: tuple[Any, ...], value: Any, problem: str) -> None:
    sts = copy.deepcopy(one("base", "StatefulSet"))
    node = sts["spec"]["template"]["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert any(problem in p for p in security_problems(sts))


@pytest.mark.parametrize("target", TARGETS)
def test_pod_user_is_the_images_user(target: str) -> None:
    df = dockerfile.parse((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    uid, _, gid = df.final.all("USER")[-1].args.partition(":")
    pod = pod_spec(target)["securityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (int(uid), int(gid), int(gid))


@pytest.mark.parametrize("target", TARGETS)
def test_only_state_and_tmp_are_writable(target: str) -> None:
    sts = one(target, "StatefulSet")
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    writable = {m["mountPath"] for m in container(target)["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/var/lib/syncd", "/tmp"}
    tmp = volume(target, "tmp")
    assert "emptyDir" in tmp and tmp["emptyDir"].get("sizeLimit")
    assert {m["name"] for m in container(target)["volumeMounts"] if m["mountPath"] == "/var/lib/syncd"} <= claims


@pytest.mark.parametrize("target", TARGETS)
def test_no_secret_material_in_the_rendered_output(target: str) -> None:
    text, rendered = _render(target)
    assert not [d for d in rendered if d["kind"] == "Secret"], "Secrets are created out of band, never rendered"
    for doc in rendered:
        assert "stringData" not in doc
    for env in container(target).get("env", []):
        assert not re.search(r"TOKEN|SECRET|KEY|PASSWORD", env["name"]), f"env {env['name']} looks like a credential"
    assert not re.search(r"hvs\.|-----BEGIN|Bearer ", text)
    config = tomllib.loads(config_map(target)["data"]["config.toml"])
    assert config["vault"].get("allow_inline_credentials", False) is False
    assert config["cloudflare"].get("allow_inline_credentials", False) is False
    assert "value" not in config["cloudflare"]["auth"]["api_token"]


@pytest.mark.parametrize("target", TARGETS)
def test_service_account_token_is_not_automounted(target: str) -> None:
    account = one(target, "ServiceAccount")
    assert pod_spec(target)["serviceAccountName"] == account["metadata"]["name"] == "syncd"
    assert account["automountServiceAccountToken"] is False
    assert pod_spec(target)["automountServiceAccountToken"] is False


# --- wiring: config, files, probes ----------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_config_is_valid_and_mounted_where_the_image_reads_it(target: str) -> None:
    s = settings(target)  # raises ConfigError naming the key if the schema is not followed
    assert s.logging.format == "json"
    assert container(target)["args"] == ["run", "--config", "/etc/syncd/config.toml"]
    (mount,) = [m for m in container(target)["volumeMounts"] if m["mountPath"] == "/etc/syncd/config.toml"]
    assert volume(target, mount["name"])["configMap"]["name"] == config_map(target)["metadata"]["name"]


@pytest.mark.parametrize("target", TARGETS)
def test_cloudflare_token_is_read_from_the_mounted_secret(target: str) -> None:
    secret = volume(target, "cloudflare-token")["secret"]
    assert secret["secretName"] == "syncd-cloudflare"
    (item,) = secret["items"]
    auth = settings(target).cloudflare.auth
    assert isinstance(auth, CloudflareApiToken)
    assert auth.api_token.file == Path(str(mount_path(target, "cloudflare-token") / item["path"]))


@pytest.mark.parametrize("target", TARGETS)
def test_vault_login_uses_the_projected_token_for_vault(target: str) -> None:
    auth = settings(target).vault.auth
    assert isinstance(auth, KubernetesAuth)
    (source,) = volume(target, "vault-token")["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["audience"] == "vault"
    assert token["expirationSeconds"] <= 3600
    assert auth.token_file == Path(str(mount_path(target, "vault-token") / token["path"]))


@pytest.mark.parametrize("target", TARGETS)
def test_probes_use_health_endpoints_on_the_configured_port(target: str) -> None:
    c = container(target)
    (port,) = [p for p in c["ports"] if p["name"] == "http"]
    assert port["containerPort"] == settings(target).server.port == 8080
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["port"] == "http"
    assert one(target, "Service")["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("target", TARGETS)
def test_termination_grace_outlasts_the_shutdown_grace(target: str) -> None:
    assert pod_spec(target)["terminationGracePeriodSeconds"] > settings(target).sync.shutdown_grace_seconds


@pytest.mark.parametrize("target", TARGETS)
def test_resources_have_requests_and_limits(target: str) -> None:
    resources = container(target)["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= resources[kind].keys()


# --- network --------------------------------------------------------------------------------------


def _ports(rule: Doc) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


@pytest.mark.parametrize("target", TARGETS)
def test_network_policy_allows_only_vault_cloudflare_and_dns(target: str) -> None:
    spec = one(target, "NetworkPolicy")["spec"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    egress = spec["egress"]
    assert all(rule.get("ports") and rule.get("to") for rule in egress), "an egress rule without ports/peers is open"
    assert set().union(*(_ports(r) for r in egress)) == {("TCP", 8200), ("TCP", 443), ("UDP", 53), ("TCP", 53)}
    (https,) = [r for r in egress if _ports(r) == {("TCP", 443)}]
    for peer in https["to"]:
        block = peer["ipBlock"]
        if block["cidr"] == "0.0.0.0/0":
            assert set(block["except"]) >= PRIVATE_RANGES
    (dns,) = [r for r in egress if _ports(r) == {("UDP", 53), ("TCP", 53)}]
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    (ingress,) = [r for r in spec["ingress"] if ("TCP", 8080) in _ports(r)]
    assert _ports(ingress) == {("TCP", 8080)}
    assert ingress["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    # The only other ingress: Vault's audit socket, when the config listens for it
    # (components/vault-notifications; test_vault_notifications.py checks its peers).
    listen = settings(target).notifications.audit_listen
    audit = [_ports(r) for r in spec["ingress"] if r is not ingress]
    assert audit == ([] if listen is None else [{("TCP", int(listen.rpartition(":")[2]))}])


@pytest.mark.parametrize("target", OVERLAYS)
def test_overlays_replace_the_placeholder_vault_address(target: str) -> None:
    text, _ = _render(target)
    assert PLACEHOLDER_VAULT_CIDR not in text
    (vault_rule,) = [r for r in one(target, "NetworkPolicy")["spec"]["egress"] if _ports(r) == {("TCP", 8200)}]
    assert vault_rule["to"]
    assert settings(target).vault.address != settings("base").vault.address, "the overlay keeps the base's Vault"


def test_base_is_namespace_agnostic_and_overlays_set_one() -> None:
    assert all("namespace" not in d["metadata"] for d in docs("base"))
    for target in OVERLAYS:
        namespaces = {d["metadata"].get("namespace") for d in docs(target) if d["kind"] != "Namespace"}
        assert len(namespaces) == 1 and None not in namespaces, f"{target}: {namespaces}"


@pytest.mark.parametrize("target", TARGETS)
def test_image_is_pinned(target: str) -> None:
    image = container(target)["image"]
    assert "@sha256:" in image or re.search(r":\d+\.\d+\.\d+", image), f"{target}: image {image!r} is not pinned"
    assert not image.endswith(":latest")


# --- monitoring -----------------------------------------------------------------------------------


def test_production_scrapes_metrics_and_loads_the_alert_rules() -> None:
    monitor = one("overlays/production", "ServiceMonitor")
    service = one("overlays/production", "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    rule = one("overlays/production", "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"SyncdMappingOutOfSync", "SyncdPropagationSlow", "SyncdCloudflareRateBudgetLow"} <= alerts
    rules_file = DEPLOY / "alerts" / "syncd-rules.yaml"
    if rules_file.is_file():
        assert rule["spec"]["groups"] == yaml.safe_load(rules_file.read_text(encoding="utf-8"))["groups"], (
            "prometheusrule.yaml is stale: run python deploy/components/monitoring/sync-rules.py"
        )


# --- Vault --------------------------------------------------------------------------------------

_POLICY_PATH = re.compile(r'path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}')


def _policy() -> dict[str, list[str]]:
    text = re.sub(r"(?m)^\s*#.*$", "", (DEPLOY / "vault" / "syncd-policy.hcl").read_text(encoding="utf-8"))
    return {p: re.findall(r'"([^"]+)"', caps) for p, caps in _POLICY_PATH.findall(text)}


def _paths_read_by(s: Settings) -> set[str]:
    paths = set()
    for m in s.mappings:
        for source in m.sources:
            mount, path = source.mount, source.path
            if not source.is_kv:
                paths.add(f"{mount}/static-creds/{source.role}")
            elif source.kv_version == 1:
                paths.add(f"{mount}/{path}")
            else:
                assert source.kv_version == 2, f"{m.name}: state kv_version so the policy can be exact"
                paths |= {f"{mount}/metadata/{path}", f"{mount}/data/{path}"}
    return paths


@pytest.mark.parametrize("target", TARGETS)
def test_vault_policy_grants_read_on_exactly_the_mapped_paths(target: str) -> None:
    policy = _policy()
    assert policy, "no path blocks parsed from syncd-policy.hcl"
    assert set(policy) == _paths_read_by(settings(target))
    assert all(caps == ["read"] for caps in policy.values()), policy
    assert not [p for p in policy if "*" in p or "+" in p or p.startswith("sys/")]


def test_vault_role_binds_the_deployed_service_account_and_audience() -> None:
    script = (DEPLOY / "vault" / "setup-kubernetes-auth.sh").read_text(encoding="utf-8")
    auth = settings("overlays/production").vault.auth
    assert isinstance(auth, KubernetesAuth)
    assert f'ROLE="${{ROLE:-{auth.role}}}"' in script
    assert f'AUTH_MOUNT="${{AUTH_MOUNT:-{auth.mount}}}"' in script
    assert "bound_service_account_names=syncd" in script
    namespace = one("overlays/production", "StatefulSet")["metadata"]["namespace"]
    assert f'SYNCD_NAMESPACE="${{SYNCD_NAMESPACE:-{namespace}}}"' in script
    assert 'AUDIENCE="${AUDIENCE:-vault}"' in script and 'audience="$AUDIENCE"' in script
    assert "token_policies=syncd" in script
