"""The alert rules pass Prometheus' own checks and unit tests, and every alert has unit tests.

``promtool check rules`` parses every expression with Prometheus' PromQL parser and validates the
rule fields; ``promtool test rules`` evaluates deploy/alerts/syncd-rules.test.yaml against
synthetic series. Both run on the plain rules file and on the groups of the generated
PrometheusRule (what the Prometheus Operator loads).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.prom_tools import PROMETHEUS_RULE, RULE_TESTS, RULES, output, promtool

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the rule files (test extra)")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _alerts(rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


def _operator_groups(tmp_path: Path) -> Path:
    """The PrometheusRule's spec.groups as a plain rules file, as the Operator hands it to Prometheus."""
    extracted = tmp_path / "syncd-rules.yaml"
    extracted.write_text(yaml.safe_dump({"groups": _load(PROMETHEUS_RULE)["spec"]["groups"]}), encoding="utf-8")
    return extracted


def _unit_tests_for(rules_file: Path, tmp_path: Path) -> Path:
    """A copy of the unit tests next to ``rules_file`` (promtool resolves rule_files relative to it)."""
    tests = _load(RULE_TESTS)
    tests["rule_files"] = [rules_file.name]
    copy = rules_file.parent / RULE_TESTS.name
    copy.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    return copy


def test_promtool_accepts_the_rules_file() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, output(done)
    assert f"{len(_alerts(_load(RULES)))} rules found" in done.stdout


def test_promtool_accepts_the_prometheusrule_groups(tmp_path: Path) -> None:
    done = promtool("check", "rules", str(_operator_groups(tmp_path)))
    assert done.returncode == 0, output(done)


def test_alert_unit_tests_pass() -> None:
    done = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert done.returncode == 0, output(done)
    assert "SUCCESS" in done.stdout


def test_alert_unit_tests_pass_against_the_prometheusrule(tmp_path: Path) -> None:
    tests = _unit_tests_for(_operator_groups(tmp_path), tmp_path)
    done = promtool("test", "rules", tests.name, cwd=tests.parent)
    assert done.returncode == 0, output(done)


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_stays_quiet() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in _load(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in _alerts(_load(RULES))}
    assert alerts, "no alerts in the rules file"
    assert alerts - fires == set(), "alerts without a unit test in which they fire"
    assert alerts - quiet == set(), "alerts without a unit test in which they stay quiet"
    assert (fires | quiet) - alerts == set(), "unit tests for alerts the rules file does not have"


@pytest.mark.parametrize("alert", [rule["alert"] for rule in _alerts(_load(RULES))])
def test_unit_tests_fail_when_an_alert_never_fires(alert: str, tmp_path: Path) -> None:
    """The unit tests have teeth: an alert whose expression can never be true makes them fail."""
    rules = _load(RULES)
    for rule in _alerts(rules):
        if rule["alert"] == alert:
            rule["expr"] = "vector(1) == 0"
    broken = tmp_path / RULES.name
    broken.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    tests = _unit_tests_for(broken, tmp_path)
    done = promtool("test", "rules", tests.name, cwd=tests.parent)
    assert done.returncode != 0, output(done)
    assert f"alertname: {alert}," in done.stdout + done.stderr, output(done)


def test_promtool_is_found_or_the_skip_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside CI a missing promtool skips with the install command; under CI=true it fails."""
    from tests.monitoring import prom_tools  # noqa: PLC0415 - the module under test

    monkeypatch.setenv("PROMTOOL", "/nonexistent/promtool")
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="apt-get install prometheus"):
        prom_tools.binary("promtool")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="may not skip"):
        prom_tools.binary("promtool")
