"""A real Prometheus scrapes ``syncd run`` on the devstack through a rotation and a refused script.

What an operator alerts on and charts is queried through Prometheus' HTTP API, as Grafana and the
alert rules would: mappings in sync, failures by Cloudflare code, the propagation delay histogram,
the rate budget and the notification connections. Every dashboard query over metrics syncd
exports today returns data; those over metrics still being added (``dashboard.PENDING_METRICS``)
must at least be accepted by Prometheus. The alert rules are loaded and evaluate without error.
Canary secret values appear in the Workers and nowhere else (scrapes, query answers, the log).
"""

from __future__ import annotations

import functools
import json
import math
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import hvac
import pytest

from syncd.devstack.stack import Devstack
from tests.monitoring import dashboard
from tests.monitoring.prom_tools import RULES
from tests.monitoring.prometheus_server import PrometheusServer, Sample, all_finite, any_series, wait_until
from tests.monitoring.syncd_process import SyncdProcess

JOB = "syncd"
PAYMENTS_SCRIPT = "payments-worker"
EDGE_SCRIPT = "edge-router"
FLAKY_SCRIPT = "flaky-worker"
STAGED_SCRIPT = "staged-worker"
CANARY_PAYMENTS = ("canary-e2e-payments-1-5b0e", "canary-e2e-payments-2-7d1a")
CANARY_EDGE = ("canary-e2e-edge-1-c3f9", "canary-e2e-edge-2-0a4e")
CANARY_FLAKY = ("canary-e2e-flaky-1-91d4", "canary-e2e-flaky-2-e6b8")
CANARY_STAGED = ("canary-e2e-staged-1-4a7c", "canary-e2e-staged-2-d90b")
CANARIES = CANARY_PAYMENTS + CANARY_EDGE + CANARY_FLAKY + CANARY_STAGED
ARRIVAL_TIMEOUT_SECONDS = 120.0

MAPPINGS = f"""
[[mapping]]
name = "payments"
vault = {{ mount = "secret", path = "e2e/payments" }}
target = {{ script = "{PAYMENTS_SCRIPT}" }}
secret_text = {{ keys = {{ api_key = "PAYMENTS_API_KEY" }} }}

[[mapping]]
name = "edge"
vault = {{ mount = "secret", path = "e2e/edge" }}
target = {{ script = "{EDGE_SCRIPT}" }}
secret_text = {{ keys = {{ token = "EDGE_TOKEN" }} }}

[[mapping]]
name = "flaky"
vault = {{ mount = "secret", path = "e2e/flaky" }}
target = {{ script = "{FLAKY_SCRIPT}" }}
secret_text = {{ keys = {{ token = "FLAKY_TOKEN" }} }}

[[mapping]]
name = "staged"
vault = {{ mount = "secret", path = "e2e/staged" }}
target = {{ script = "{STAGED_SCRIPT}" }}
secret_text = {{ keys = {{ token = "STAGED_TOKEN" }} }}
on_undeployed = "stage"
"""

pytestmark = pytest.mark.timeout(600)  # a real Prometheus and syncd on a loaded 2-core machine


@pytest.fixture
def stack() -> Iterator[Devstack]:
    devstack = Devstack(scripts=[PAYMENTS_SCRIPT, EDGE_SCRIPT, FLAKY_SCRIPT, STAGED_SCRIPT])
    try:
        devstack.wait_until_ready()
        yield devstack
    finally:
        devstack.stop()


def _holds(stack: Devstack, script: str, binding: str, value: str) -> bool:
    body = stack.cloudflare.secrets_of(script).get(binding)
    return body is not None and body.get("text") == value


def _value(samples: list[Sample], **labels: str) -> float:
    matching = [s.value for s in samples if labels.items() <= s.labels.items()]
    return matching[0] if matching else math.nan


def _not_deployed_code(samples: list[Sample]) -> bool:
    """Cloudflare's "latest version not deployed" refusal: 10214 or 10215 depending on the endpoint."""
    return any(s.labels.get("code") in {"10214", "10215"} and s.value > 0 for s in samples)


def _in_sync(mapping: str, expected: float) -> str:
    return f'syncd_mapping_in_sync{{job="{JOB}", mapping="{mapping}"}} == {expected:g}'


def test_prometheus_scrapes_syncd_through_a_rotation_and_a_refused_script(stack: Devstack, tmp_path: Path) -> None:
    vault = hvac.Client(url=stack.vault.url, token=stack.vault.root_token, timeout=10)
    vault.secrets.kv.v2.create_or_update_secret(path="e2e/payments", secret={"api_key": CANARY_PAYMENTS[0]})
    vault.secrets.kv.v2.create_or_update_secret(path="e2e/edge", secret={"token": CANARY_EDGE[0]})
    vault.secrets.kv.v2.create_or_update_secret(path="e2e/flaky", secret={"token": CANARY_FLAKY[0]})
    vault.secrets.kv.v2.create_or_update_secret(path="e2e/staged", secret={"token": CANARY_STAGED[0]})
    (tmp_path / "syncd").mkdir()
    (tmp_path / "prometheus").mkdir()
    syncd = SyncdProcess(stack, tmp_path / "syncd", MAPPINGS).start()
    try:
        with PrometheusServer(tmp_path / "prometheus", {JOB: [syncd.target]}, rule_files=[RULES]) as prometheus:
            _scenario(stack, vault, syncd, prometheus)
    finally:
        exit_code = syncd.stop()
    assert exit_code == 0, f"syncd run exited {exit_code} on SIGTERM\n{syncd.log()[-4000:]}"
    leaks = [f"canary#{i}" for i, canary in enumerate(CANARIES) if canary in syncd.log()]
    assert not leaks, f"{leaks} in the syncd log"


def _scenario(stack: Devstack, vault: hvac.Client, syncd: SyncdProcess, prometheus: PrometheusServer) -> None:
    prometheus.wait_for(f'up{{job="{JOB}"}} == 1', any_series, "Prometheus scraping syncd")
    prometheus.wait_for(
        f'syncd_mapping_in_sync{{job="{JOB}"}} == 1', lambda s: len(s) == 4, "every mapping in sync after startup"
    )

    # Vault's socket audit device dials syncd's listener: notification health goes to 1 connection.
    vault.sys.enable_audit_device("file", path="file", options={"file_path": "discard"})
    vault.sys.enable_audit_device(
        "socket", path="syncd", options={"address": f"127.0.0.1:{syncd.audit_port}", "socket_type": "tcp"}
    )
    prometheus.wait_for(
        f'syncd_vault_notification_connections{{job="{JOB}", source="audit"}} >= 1',
        any_series,
        "the audit device connected to syncd",
    )

    # A rotation: the Worker gets the new value and the propagation delay histogram counts it.
    vault.secrets.kv.v2.create_or_update_secret(path="e2e/payments", secret={"api_key": CANARY_PAYMENTS[1]})
    assert wait_until(
        lambda: _holds(stack, PAYMENTS_SCRIPT, "PAYMENTS_API_KEY", CANARY_PAYMENTS[1]), ARRIVAL_TIMEOUT_SECONDS
    ), "the rotation did not reach the Worker"
    prometheus.wait_for(
        f'syncd_propagation_delay_seconds_count{{job="{JOB}"}} >= 1', any_series, "the rotation's propagation delay"
    )
    prometheus.wait_for(
        f'syncd_vault_notifications_total{{job="{JOB}", source="audit"}} >= 1', any_series, "audit notifications"
    )

    # A refused script: the edge Worker's latest version is not deployed (Cloudflare 10214/10215).
    stack.cloudflare.set_undeployed(EDGE_SCRIPT, True)
    vault.secrets.kv.v2.create_or_update_secret(path="e2e/edge", secret={"token": CANARY_EDGE[1]})
    prometheus.wait_for(_in_sync("edge", 0), any_series, "the refused mapping out of sync")
    prometheus.wait_for(_in_sync("payments", 1), any_series, "the other mapping still in sync")
    failures = prometheus.wait_for(
        f'sum by (mapping, reason) (syncd_mapping_failures_total{{job="{JOB}"}})',
        lambda s: _value(s, mapping="edge", reason="CloudflareNotDeployed") >= 2,
        "repeated CloudflareNotDeployed failures of the edge mapping",
    )
    assert {s.labels["mapping"] for s in failures} == {"edge"}, failures
    prometheus.wait_for(
        f'sum by (code) (increase(syncd_cloudflare_requests_total{{job="{JOB}", outcome="error"}}[5m]))',
        _not_deployed_code,
        "Cloudflare refusals counted by code (10214/10215)",
    )
    prometheus.wait_for(
        'ALERTS{alertname="SyncdMappingOutOfSync", alertstate="pending", mapping="edge"}',
        any_series,
        "SyncdMappingOutOfSync pending for the refused mapping",
    )
    # A failing script: its writes answer 503, so syncd backs it off (and leaves the others alone).
    httpx.post(
        f"{stack.cloudflare.url}/__devstack/faults",
        json={"method": "PATCH", "path": f"*/scripts/{FLAKY_SCRIPT}/secrets-bulk", "count": 10_000, "status": 503},
        timeout=10,
    ).raise_for_status()
    vault.secrets.kv.v2.create_or_update_secret(path="e2e/flaky", secret={"token": CANARY_FLAKY[1]})
    prometheus.wait_for(
        f'syncd_script_backoff{{job="{JOB}", script="{FLAKY_SCRIPT}"}} == 1',
        any_series,
        "the failing script backed off",
    )
    # A gradual rollout on a Worker whose mapping stages: the rotation goes into an undeployed version.
    stack.cloudflare.set_undeployed(STAGED_SCRIPT, True)
    vault.secrets.kv.v2.create_or_update_secret(path="e2e/staged", secret={"token": CANARY_STAGED[1]})
    prometheus.wait_for(
        f'syncd_mapping_staged{{job="{JOB}", mapping="staged"}} == 1', any_series, "the rotation staged, not deployed"
    )
    budget = prometheus.wait_for(
        f'syncd_cloudflare_rate_budget_remaining{{job="{JOB}"}}', all_finite, "a rate budget reading"
    )
    assert 0 < budget[0].value <= 1200, budget

    _dashboard_queries_return_data(prometheus)
    _alert_rules_evaluate(prometheus)
    _dashboard_metrics_exist(syncd.metrics())

    # Back to normal: the Worker is deployed again and the refused rotation arrives.
    stack.cloudflare.set_undeployed(EDGE_SCRIPT, False)
    prometheus.wait_for(_in_sync("edge", 1), any_series, "the refused mapping back in sync")
    assert _holds(stack, EDGE_SCRIPT, "EDGE_TOKEN", CANARY_EDGE[1])

    answers = "\n".join(prometheus.queries) + syncd.metrics()
    leaks = [f"canary#{i}" for i, canary in enumerate(CANARIES) if canary in answers]
    assert not leaks, f"{leaks} in /metrics or in Prometheus' answers"


# What some panels must show in this scenario, beyond returning a series.
_EXPECTED: dict[str, Callable[[list[Sample]], bool]] = {
    "Mappings out of sync": lambda s: s[0].value == 3,
    "Mappings in sync": lambda s: s[0].value == 1,
    "In sync, per mapping": lambda s: (
        _value(s, mapping="edge") == 0 and _value(s, mapping="flaky") == 0 and _value(s, mapping="payments") == 1
    ),
    "Rotations staged in undeployed versions": lambda s: _value(s, mapping="staged") == 1,
    "Propagation delay": all_finite,
    "Cloudflare failures by code": _not_deployed_code,
    "Mapping failures by reason": lambda s: _value(s, mapping="edge", reason="CloudflareNotDeployed") > 0,
    "Cloudflare rate budget": all_finite,
    "Notification connections": lambda s: _value(s, source="audit") >= 1,
    "Notifications delivered": lambda s: _value(s, source="audit") > 0,
}


def _dashboard_queries_return_data(prometheus: PrometheusServer) -> None:
    for name, expr in dashboard.variable_queries().items():
        values = prometheus.wait_for(expr, any_series, f"dashboard variable ${name}")
        assert {s.labels.get(name) for s in values} == {JOB}, values
    for query in dashboard.queries():
        expr = query.concrete(job=JOB, rate_interval="5m")
        if query.pending():
            prometheus.query(expr)  # accepted (parsed and evaluated) even while the metric is absent
            continue
        check = _EXPECTED.get(query.panel, any_series)
        prometheus.wait_for(expr, functools.partial(_shows, check), f"dashboard panel {query.name}")


def _shows(check: Callable[[list[Sample]], bool], samples: list[Sample]) -> bool:
    return any_series(samples) and check(samples)


def _alert_rules_evaluate(prometheus: PrometheusServer) -> None:
    rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
    shipped = {r["alert"] for r in _alerts_in_file()}
    assert {r["name"] for r in rules} == shipped
    broken = {r["name"]: r.get("lastError") for r in rules if r["health"] == "err"}
    assert not broken, f"alert rules failing to evaluate: {broken}"
    assert wait_until(
        lambda: all(r["health"] == "ok" for g in prometheus.api("rules")["groups"] for r in g["rules"]), 60
    ), "not every alert rule has been evaluated"


def _alerts_in_file() -> list[dict[str, str]]:
    yaml = pytest.importorskip("yaml")
    loaded = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in loaded["groups"] for rule in group["rules"] if "alert" in rule]


def _dashboard_metrics_exist(exposition: str) -> None:
    """Every metric a non-pending query reads is exported; a pending one that now is gets flagged."""
    exported = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{| )", exposition, re.MULTILINE))
    for query in dashboard.queries():
        missing = query.metrics() - exported
        if query.pending():
            arrived = (query.metrics() & dashboard.PENDING_METRICS) & exported
            if arrived:
                warnings.warn(
                    f"{sorted(arrived)} are exported now: move them out of dashboard.PENDING_METRICS",
                    stacklevel=1,
                )
            continue
        assert not missing, f"dashboard panel {query.name} reads metrics syncd does not export: {sorted(missing)}"


def test_the_scenario_names_every_panel_it_checks_closely() -> None:
    titles = {panel["title"] for panel in dashboard.panels()}
    assert set(_EXPECTED) <= titles, json.dumps(sorted(set(_EXPECTED) - titles))
