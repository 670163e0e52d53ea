"""Metrics: scraped values move with cycle reports and client observations; labels stay bounded."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import syncd
from syncd.app.leadership import LeaderMetrics
from syncd.app.service.metrics import Metrics
from syncd.engine.report import Action, CycleReport, MappingResult, PlannedChange, PushRecord, Reason, Trigger
from syncd.model import Target, VaultSecretRef

RULES = Path(__file__).resolve().parents[2] / "deploy" / "alerts" / "syncd-rules.yaml"
ACCOUNT = "0" * 32
EDGE = Target(ACCOUNT, "edge")
API = Target(ACCOUNT, "api")
T0 = 1_800_000_000.0


def scrape(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = metrics.render()
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return scrape(metrics).get((name, frozenset(labels.items())))


def series(metrics: Metrics, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample, labels) in scrape(metrics) if sample == name]


def result(
    mapping: str, target: Target = EDGE, *, in_sync: bool = True, error_code: str | None = None, **kw: object
) -> MappingResult:
    return MappingResult(
        mapping=mapping,
        target=target,
        ref=VaultSecretRef("secret", f"apps/{mapping}"),
        in_sync=in_sync,
        vault_version=3,
        error_code=error_code,
        **kw,  # type: ignore[arg-type]
    )


def write(mapping: str, binding: str, target: Target = EDGE, reason: Reason = Reason.CHANGED) -> PlannedChange:
    return PlannedChange(mapping, target, binding, Action.WRITE, reason, vault_version=3)


def cycle(
    *results: MappingResult,
    pushes: tuple[PushRecord, ...] = (),
    trigger: Trigger = Trigger.INTERVAL,
    started: float = T0,
    seconds: float = 1.5,
    timed_out: bool = False,
    dry_run: bool = False,
) -> CycleReport:
    return CycleReport(
        cycle_id="c1",
        trigger=trigger,
        started_at=started,
        finished_at=started + seconds,
        results=results,
        pushes=pushes,
        timed_out=timed_out,
        dry_run=dry_run,
    )


def push(
    *mappings: str,
    written: tuple[str, ...] = (),
    target: Target = EDGE,
    outcome: str = "ok",
    confirmed_at: float | None = T0 + 1,
    vault_created: dict[str, datetime] | None = None,
) -> PushRecord:
    return PushRecord(
        target=target,
        mappings=mappings,
        written=written,
        deleted=(),
        outcome=outcome,
        seconds=0.3,
        confirmed_at=confirmed_at if outcome == "ok" else None,
        vault_created=vault_created or {},
        error_code=None if outcome == "ok" else "CloudflareValidationError(10053)",
    )


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(version="9.9.9")


# --- process-level gauges --------------------------------------------------------------------------


def test_build_info_carries_version_and_python(metrics: Metrics) -> None:
    [labels] = series(metrics, "syncd_build_info")
    assert labels["version"] == "9.9.9"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", labels["python"])
    assert Metrics().render()[0].count(f'version="{syncd.__version__}"'.encode()) == 1


def test_each_instance_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics(CollectorRegistry())
    first.set_ready(True)
    assert value(first, "syncd_ready") == 1
    assert value(second, "syncd_ready") == 0


def test_ready_token_expiry_and_rate_budget_gauges_follow_the_setters(metrics: Metrics) -> None:
    assert math.isnan(value(metrics, "syncd_vault_token_expiry_timestamp_seconds") or 0.0)
    assert math.isnan(value(metrics, "syncd_cloudflare_rate_budget_remaining") or 0.0)

    metrics.set_ready(True)
    metrics.set_vault_token_expiry(T0 + 3600)
    metrics.set_rate_budget(1150)
    assert value(metrics, "syncd_ready") == 1
    assert value(metrics, "syncd_vault_token_expiry_timestamp_seconds") == T0 + 3600
    assert value(metrics, "syncd_cloudflare_rate_budget_remaining") == 1150

    metrics.set_ready(False)
    metrics.set_vault_token_expiry(None)
    assert value(metrics, "syncd_ready") == 0
    assert math.isnan(value(metrics, "syncd_vault_token_expiry_timestamp_seconds") or 0.0)


def test_render_returns_prometheus_text_and_content_type(metrics: Metrics) -> None:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    assert b"# TYPE syncd_cycles_total counter" in body


# --- client observations ---------------------------------------------------------------------------


def test_vault_and_cloudflare_attempts_are_counted_and_timed(metrics: Metrics) -> None:
    metrics.observe("vault", "metadata_read", "ok", "200", 0.02)
    metrics.observe("vault", "metadata_read", "ok", "200", 0.04)
    metrics.observe("vault", "login", "error", "403", 0.1)
    metrics.observe("cloudflare", "bulk_update", "retry", "429", 0.2)
    metrics.observe("cloudflare", "bulk_update", "ok", "200", 0.3)

    assert value(metrics, "syncd_vault_requests_total", operation="metadata_read", outcome="ok") == 2
    assert value(metrics, "syncd_vault_requests_total", operation="login", outcome="error") == 1
    assert value(metrics, "syncd_vault_request_duration_seconds_count", operation="metadata_read") == 2
    assert value(metrics, "syncd_vault_request_duration_seconds_sum", operation="metadata_read") == pytest.approx(0.06)
    labels = {"operation": "bulk_update", "outcome": "retry", "code": "429"}
    assert value(metrics, "syncd_cloudflare_requests_total", **labels) == 1
    assert value(metrics, "syncd_cloudflare_request_duration_seconds_count", operation="bulk_update") == 2


def test_unexpected_operation_outcome_and_code_collapse_to_other(metrics: Metrics) -> None:
    metrics.observe("cloudflare", "GET /accounts/x/workers/scripts/edge", "weird", "not a code", 0.1)
    metrics.observe("cloudflare", "list_secrets", "error", "timeout", 0.1)

    assert value(metrics, "syncd_cloudflare_requests_total", operation="other", outcome="other", code="other") == 1
    assert value(metrics, "syncd_cloudflare_requests_total", operation="list_secrets", outcome="error", code="timeout")


# --- cycles ------------------------------------------------------------------------------------------


def test_successful_cycle_counts_times_and_marks_mappings_in_sync(metrics: Metrics) -> None:
    metrics.record_cycle(cycle(result("api-keys"), result("signing"), trigger=Trigger.STARTUP, seconds=2.0))

    assert value(metrics, "syncd_cycles_total", trigger="startup", outcome="ok") == 1
    assert value(metrics, "syncd_cycle_duration_seconds_count") == 1
    assert value(metrics, "syncd_cycle_duration_seconds_sum") == 2.0
    assert value(metrics, "syncd_last_cycle_timestamp_seconds") == T0 + 2
    assert value(metrics, "syncd_last_successful_cycle_timestamp_seconds") == T0 + 2
    for mapping in ("api-keys", "signing"):
        assert value(metrics, "syncd_mapping_in_sync", mapping=mapping) == 1
        assert value(metrics, "syncd_mapping_last_success_timestamp_seconds", mapping=mapping) == T0 + 2


def test_failed_mapping_counts_its_error_class_and_leaves_the_others_in_sync(metrics: Metrics) -> None:
    metrics.record_cycle(cycle(result("api-keys"), result("signing")))
    later = T0 + 30
    metrics.record_cycle(
        cycle(
            result("api-keys"),
            result("signing", in_sync=False, error_code="CloudflareNotDeployed(10215)"),
            started=later,
        )
    )

    assert value(metrics, "syncd_cycles_total", trigger="interval", outcome="failed") == 1
    assert value(metrics, "syncd_last_cycle_timestamp_seconds") == later + 1.5
    assert value(metrics, "syncd_last_successful_cycle_timestamp_seconds") == T0 + 1.5
    assert value(metrics, "syncd_mapping_in_sync", mapping="signing") == 0
    assert value(metrics, "syncd_mapping_last_success_timestamp_seconds", mapping="signing") == T0 + 1.5
    assert value(metrics, "syncd_mapping_in_sync", mapping="api-keys") == 1
    reason = {"mapping": "signing", "reason": "CloudflareNotDeployed"}
    assert value(metrics, "syncd_mapping_failures_total", **reason) == 1


def test_failure_reason_outside_the_error_tree_is_other(metrics: Metrics) -> None:
    metrics.record_cycle(cycle(result("api-keys", in_sync=False, error_code="secret/apps/api-keys exploded")))

    assert series(metrics, "syncd_mapping_failures_total") == [{"mapping": "api-keys", "reason": "other"}]


def test_timed_out_cycle_has_outcome_timeout_and_is_not_a_success(metrics: Metrics) -> None:
    metrics.record_cycle(cycle(result("api-keys"), timed_out=True, trigger=Trigger.MANUAL))

    assert value(metrics, "syncd_cycles_total", trigger="manual", outcome="timeout") == 1
    assert value(metrics, "syncd_last_successful_cycle_timestamp_seconds") == 0


def test_every_trigger_is_counted_under_its_own_label(metrics: Metrics) -> None:
    for trigger in Trigger:
        metrics.record_cycle(cycle(result("api-keys"), trigger=trigger))

    for trigger in Trigger:
        assert value(metrics, "syncd_cycles_total", trigger=trigger.value, outcome="ok") == 1, trigger
    assert value(metrics, "syncd_cycles_total", trigger="other", outcome="ok") is None


def test_unknown_trigger_is_labelled_other(metrics: Metrics) -> None:
    # Only a caller that bypasses the type (an untyped plug-in, a report built by hand) can get here.
    metrics.record_cycle(cycle(result("api-keys"), trigger=cast(Trigger, "user-input-123")))

    assert value(metrics, "syncd_cycles_total", trigger="other", outcome="ok") == 1


def test_dry_run_reports_are_not_recorded(metrics: Metrics) -> None:
    metrics.record_cycle(cycle(result("api-keys", in_sync=False), trigger=Trigger.PLAN, dry_run=True))

    assert series(metrics, "syncd_cycles_total") == []
    assert series(metrics, "syncd_mapping_in_sync") == []


# --- pushes and propagation --------------------------------------------------------------------------


def test_one_push_for_two_mappings_counts_per_mapping_and_bindings_per_owner(metrics: Metrics) -> None:
    changes_a = (write("api-keys", "API_KEY"), write("api-keys", "API_KEY_OLD"))
    changes_b = (write("signing", "SIGNING_KEY"),)
    report = cycle(
        result("api-keys", changes=changes_a),
        result("signing", changes=changes_b),
        pushes=(push("api-keys", "signing", written=("API_KEY", "API_KEY_OLD", "SIGNING_KEY")),),
    )
    metrics.record_cycle(report)

    for mapping in ("api-keys", "signing"):
        assert value(metrics, "syncd_pushes_total", mapping=mapping, script="edge", outcome="ok") == 1
    assert value(metrics, "syncd_bindings_written_total", mapping="api-keys", script="edge") == 2
    assert value(metrics, "syncd_bindings_written_total", mapping="signing", script="edge") == 1


def test_refused_push_counts_an_error_and_writes_no_bindings(metrics: Metrics) -> None:
    report = cycle(
        result("api-keys", in_sync=False, error_code="CloudflareValidationError(10053)"),
        pushes=(push("api-keys", written=("API_KEY",), outcome="error"),),
    )
    metrics.record_cycle(report)

    assert value(metrics, "syncd_pushes_total", mapping="api-keys", script="edge", outcome="error") == 1
    assert series(metrics, "syncd_bindings_written_total") == []
    assert value(metrics, "syncd_propagation_delay_seconds_count") == 0


def test_dispatch_namespace_is_part_of_the_script_label(metrics: Metrics) -> None:
    tenant = Target(ACCOUNT, "tenant-a", dispatch_namespace="prod")
    metrics.record_cycle(cycle(result("api-keys", tenant), pushes=(push("api-keys", target=tenant, written=("K",)),)))

    assert value(metrics, "syncd_pushes_total", mapping="api-keys", script="prod/tenant-a", outcome="ok") == 1


def test_propagation_delay_runs_from_vault_creation_to_confirmation(metrics: Metrics) -> None:
    created = datetime.fromtimestamp(T0 - 42, tz=UTC)
    report = cycle(
        result("api-keys", changes=(write("api-keys", "API_KEY"),)),
        pushes=(push("api-keys", written=("API_KEY",), confirmed_at=T0, vault_created={"api-keys": created}),),
    )
    metrics.record_cycle(report)

    assert value(metrics, "syncd_propagation_delay_seconds_count") == 1
    assert value(metrics, "syncd_propagation_delay_seconds_sum") == pytest.approx(42.0)
    assert value(metrics, "syncd_propagation_delay_seconds_bucket", le="30.0") == 0
    assert value(metrics, "syncd_propagation_delay_seconds_bucket", le="60.0") == 1


def test_first_push_of_an_old_version_is_not_propagation_delay(metrics: Metrics) -> None:
    months_ago = datetime.fromtimestamp(T0 - 90 * 86400, tz=UTC)
    report = cycle(
        result("api-keys", changes=(write("api-keys", "API_KEY", reason=Reason.NEW),)),
        pushes=(push("api-keys", written=("API_KEY",), confirmed_at=T0, vault_created={"api-keys": months_ago}),),
    )
    metrics.record_cycle(report)

    assert value(metrics, "syncd_pushes_total", mapping="api-keys", script="edge", outcome="ok") == 1
    assert value(metrics, "syncd_propagation_delay_seconds_count") == 0


def test_naive_vault_created_time_is_read_as_utc(metrics: Metrics) -> None:
    naive = datetime.fromtimestamp(T0 - 5, tz=UTC).replace(tzinfo=None)
    metrics.record_cycle(
        cycle(
            result("api-keys"),
            pushes=(push("api-keys", written=("K",), confirmed_at=T0, vault_created={"api-keys": naive}),),
        )
    )

    assert value(metrics, "syncd_propagation_delay_seconds_sum") == pytest.approx(5.0)


# --- label bounds ------------------------------------------------------------------------------------


def _busy_cycle(*mappings: str) -> CycleReport:
    return cycle(
        *(result(m, in_sync=False, error_code="VaultPermissionDenied") for m in mappings),
        pushes=tuple(push(m, written=(f"{m.upper()}_K",)) for m in mappings),
    )


def test_removing_a_mapping_from_the_config_removes_all_its_series(metrics: Metrics) -> None:
    metrics.configure_mappings(["api-keys", "signing"])
    metrics.record_cycle(_busy_cycle("api-keys", "signing"))
    metrics.record_cycle(cycle(result("api-keys"), result("signing")))
    before = {labels.get("mapping") for (_, labels_set) in scrape(metrics) for labels in [dict(labels_set)]}
    assert {"api-keys", "signing"} <= before

    metrics.configure_mappings(["api-keys"])

    remaining = {dict(labels).get("mapping") for (_, labels) in scrape(metrics)} - {None}
    assert remaining == {"api-keys"}
    assert value(metrics, "syncd_pushes_total", mapping="api-keys", script="edge", outcome="ok") == 1


def test_results_of_mappings_not_in_the_config_are_ignored(metrics: Metrics) -> None:
    metrics.configure_mappings(["api-keys"])
    metrics.record_cycle(_busy_cycle("api-keys", "ghost"))

    assert {dict(labels).get("mapping") for (_, labels) in scrape(metrics)} - {None} == {"api-keys"}


def test_a_mapping_moved_to_another_script_drops_its_old_script_series(metrics: Metrics) -> None:
    metrics.record_cycle(cycle(result("api-keys", EDGE), pushes=(push("api-keys", written=("K",)),)))
    metrics.record_cycle(cycle(result("api-keys", API), pushes=(push("api-keys", target=API, written=("K",)),)))

    assert {labels["script"] for labels in series(metrics, "syncd_pushes_total")} == {"api"}
    assert {labels["script"] for labels in series(metrics, "syncd_bindings_written_total")} == {"api"}


def test_no_vault_path_or_binding_name_becomes_a_label(metrics: Metrics) -> None:
    metrics.record_cycle(_busy_cycle("api-keys"))
    body, _ = metrics.render()

    assert b"apps/api-keys" not in body
    assert b"API-KEYS_K" not in body


# --- alert rules -------------------------------------------------------------------------------------


def _exported_sample_names(metrics: Metrics) -> set[str]:
    body, _ = metrics.render()
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
    names: set[str] = set()
    for match in re.finditer(r"^# TYPE (\S+) (\S+)$", body.decode(), re.MULTILINE):
        name, kind = match.groups()
        names.add(name)
        names.update(name + suffix for suffix in suffixes.get(kind, ()))
    return names


def _rule_exprs() -> list[str]:
    text = RULES.read_text()
    exprs: list[str] = []
    for block in re.split(r"^\s*- alert: ", text, flags=re.MULTILINE)[1:]:
        match = re.search(r"^\s*expr: (.*?)^\s*(?:for|labels):", block, re.MULTILINE | re.DOTALL)
        assert match, f"alert without expr/for/labels: {block.splitlines()[0]}"
        exprs.append(match.group(1))
    return exprs


def test_alert_rules_use_only_metrics_syncd_exports(metrics: Metrics) -> None:
    LeaderMetrics(metrics.registry)  # the service always adds them (syncd.app.service.wiring)
    exported = _exported_sample_names(metrics)
    used = {name for expr in _rule_exprs() for name in re.findall(r"\b(?:syncd|process)_[a-z_]+\b", expr)}

    assert len(_rule_exprs()) >= 6
    assert "syncd_mapping_in_sync" in used
    assert used - exported == set()


def test_alert_rules_are_valid_yaml_with_severity_and_summary() -> None:
    yq = shutil.which("yq")
    if yq is None:
        pytest.skip("yq is not installed; the metric-name check above still runs")
    parsed = json.loads(subprocess.run([yq, ".", str(RULES)], check=True, capture_output=True, text=True).stdout)

    rules = [rule for group in parsed["groups"] for rule in group["rules"]]
    assert {r["alert"] for r in rules} >= {"SyncdMappingOutOfSync", "SyncdNoSuccessfulCycle", "SyncdPropagationSlow"}
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["expr"].strip()
