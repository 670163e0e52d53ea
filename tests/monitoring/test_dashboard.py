"""The Grafana dashboard: well-formed, every query parses with Prometheus' parser, and it covers
what an operator watches. That the queries return data is shown by test_prometheus_end_to_end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.monitoring import dashboard
from tests.monitoring.prom_tools import RULES, output, promtool

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to write the rule file promtool parses (test extra)")

# What the dashboard must chart, by metric (issue 11): a panel may not silently disappear.
REQUIRED_METRICS = {
    "syncd_propagation_delay_seconds_bucket",
    "syncd_mapping_in_sync",
    "syncd_pushes_total",
    "syncd_cloudflare_requests_total",
    "syncd_mapping_failures_total",
    "syncd_cloudflare_rate_budget_remaining",
    "syncd_vault_notification_connections",
    "syncd_vault_notifications_total",
    "syncd_script_backoff",
    "syncd_script_backoff_seconds",
    "syncd_drift_detected_total",
    "syncd_drift_corrected_total",
    "syncd_leader",
    "syncd_sync_mode",
    "syncd_mapping_staged",
}


def _as_recording_rules(tmp_path: Path) -> Path:
    """Every dashboard query as a recording rule: ``promtool check rules`` parses each with PromQL's parser."""
    exprs = [query.concrete() for query in dashboard.queries()] + list(dashboard.variable_queries().values())
    rules = [{"record": f"syncd_dashboard:query_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    return path


def test_every_dashboard_query_parses_as_promql(tmp_path: Path) -> None:
    done = promtool("check", "rules", str(_as_recording_rules(tmp_path)))
    assert done.returncode == 0, output(done)
    expected = len(dashboard.queries()) + len(dashboard.variable_queries())
    assert f"SUCCESS: {expected} rules found" in done.stdout, output(done)


def test_the_parse_check_catches_a_broken_query(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "r", "expr": "sum by (le (rate(x[5m]))"}]}]}),
        encoding="utf-8",
    )
    done = promtool("check", "rules", str(path))
    assert done.returncode != 0, output(done)


def test_dashboard_charts_what_an_operator_watches() -> None:
    charted = {metric for query in dashboard.queries() for metric in query.metrics()}
    assert REQUIRED_METRICS - charted == set()


def test_every_panel_has_a_title_a_description_and_queries_through_the_datasource_variable() -> None:
    board = dashboard.load()
    assert board["uid"] and board["title"]
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "job"} <= variables
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    titles = [panel["title"] for panel in dashboard.panels(board)]
    assert len(titles) == len(set(titles)), "panel titles must be unique (tests and people name panels by title)"
    for panel in dashboard.panels(board):
        assert panel["title"] and panel.get("description"), panel.get("title")
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert '{job=~"$job"' in target["expr"], f"{panel['title']}: every selector filters on $job"


def test_alert_rules_and_dashboard_read_the_same_metric_names() -> None:
    """A metric an alert fires on is charted, so the dashboard shows why an alert fired."""
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    alerted = {
        metric
        for group in rules["groups"]
        for rule in group["rules"]
        for metric in dashboard.Query("rule", "A", rule["expr"]).metrics()
        if metric.startswith("syncd_")
    }
    charted = {metric for query in dashboard.queries() for metric in query.metrics()}
    assert alerted - charted == set()


def test_metric_names_are_extracted_from_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    expr = 'histogram_quantile(0.9, sum by (le) (rate(a_bucket{job=~"$job"}[$__rate_interval]))) - time() or vector(0)'
    query = dashboard.Query("p", "A", expr)
    assert query.metrics() == {"a_bucket"}
    monkeypatch.setattr(dashboard, "PENDING_METRICS", frozenset({"syncd_future_metric"}))
    assert dashboard.Query("p", "A", "max by (mode) (syncd_future_metric) == 1").pending()
    assert not dashboard.Query("p", "A", "max by (mode) (syncd_sync_mode) == 1").pending()
