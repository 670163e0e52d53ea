"""Reload (SIGHUP): every key of the file is applied or truthfully needs a restart, by one table
(``RELOAD_RULES``) that the reload, its log lines and the README share. A key that needs a restart
keeps its running value; one that is applied takes its new value, with no warning about it."""

from __future__ import annotations

import logging
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from syncd.app.notify.audit import paths_to_mappings
from syncd.app.service.daemon import Service, ServiceParts
from syncd.app.service.reload import (
    APPLIED,
    RELOAD_RULES,
    RESTART,
    changed_keys,
    effect_of,
    effects_table_markdown,
    in_force,
)
from syncd.config import LoggingSettings, Settings, load_config
from tests.app.conftest import LogCapture
from tests.app.test_service import FakeMetrics, FakeReconciler, FakeState, RecordingScheduler, config_with

README = Path(__file__).resolve().parents[3] / "README.md"
BASE = config_with("alpha", "beta")
ACCOUNT = 'account_id = "0123456789abcdef0123456789abcdef"'


def at(settings: Settings, key: str) -> Any:
    value: Any = settings
    for name in key.split("."):
        value = getattr(value, name)
    return value


# -- the table -------------------------------------------------------------------------------------


def _model_of(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def test_every_key_of_the_file_has_exactly_one_rule() -> None:
    keys = [rule.key for rule in RELOAD_RULES]
    assert len(keys) == len(set(keys))
    hints = typing.get_type_hints(Settings)
    missing, unknown = [], [key for key in keys if key.split(".")[0] not in Settings.model_fields]
    for section in Settings.model_fields:
        if section in keys:
            assert not [k for k in keys if k.startswith(section + ".")], f"{section} has a rule and key rules"
            continue
        model = _model_of(hints[section])
        assert model is not None, f"{section}: a section of plain values needs a rule of its own"
        missing += [f"{section}.{name}" for name in model.model_fields if f"{section}.{name}" not in keys]
        unknown += [k for k in keys if k.startswith(section + ".") and k.split(".", 1)[1] not in model.model_fields]
    assert (missing, unknown) == ([], [])


def test_the_effect_of_a_key_is_its_rule_or_its_sections() -> None:
    assert effect_of("vault.tls.ca_bundle") is RESTART
    assert effect_of("cloudflare.write_mode") is APPLIED
    assert effect_of("cloudflare.auth.api_token") is RESTART
    assert effect_of("logging.level") is APPLIED
    with pytest.raises(KeyError):
        effect_of("nonsense")


def test_the_readme_shows_the_table() -> None:
    assert effects_table_markdown() in README.read_text()


def test_in_force_keeps_the_running_values_of_what_needs_a_restart(tmp_path: Path) -> None:
    old = _load(tmp_path / "old.toml", BASE)
    new = _load(
        tmp_path / "new.toml",
        BASE.replace(ACCOUNT, ACCOUNT + '\nwrite_mode = "single"\ntimeout_seconds = 3')
        + "\n[state.kubernetes]\nsecret_count = 8\n",
    )
    assert changed_keys(old, new) == ["cloudflare.write_mode", "cloudflare.timeout_seconds", "state.kubernetes"]
    effective = in_force(old, new)
    assert effective.cloudflare.write_mode == "single"
    assert effective.cloudflare.timeout_seconds == old.cloudflare.timeout_seconds
    assert effective.state == old.state
    assert in_force(old, _load(tmp_path / "same.toml", BASE.replace("interval_seconds = 30", "interval_seconds = 40")))
    unchanged = _load(tmp_path / "mapping.toml", config_with("alpha", "beta", "gamma"))
    assert in_force(old, unchanged) is unchanged  # nothing to keep: the loaded object itself


def _load(path: Path, text: str) -> Settings:
    path.write_text(text)
    return load_config(path)


# -- a running service, section by section -----------------------------------------------------------


@dataclass
class Harness:
    service: Service
    reconciler: FakeReconciler
    path: Path
    applied_logging: list[LoggingSettings]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    path = tmp_path / "syncd.toml"
    path.write_text(BASE)
    reconciler, applied_logging = FakeReconciler(["alpha", "beta"]), list[LoggingSettings]()
    service = Service(
        load_config(path),
        path,
        ServiceParts(reconciler, FakeState(), FakeMetrics()),
        scheduler=RecordingScheduler(),
        apply_logging=applied_logging.append,
    )
    service.start()
    yield Harness(service, reconciler, path, applied_logging)
    service.shutdown()


def appended(tables: str) -> Callable[[str], str]:
    return lambda text: text + "\n" + tables + "\n"


def after(anchor: str, lines: str) -> Callable[[str], str]:
    return lambda text: text.replace(anchor, anchor + "\n" + lines)


@dataclass(frozen=True)
class Case:
    edit: Callable[[str], str]
    applied: list[str]
    restart: list[str]


CASES = {
    "cloudflare, applied": Case(
        after(ACCOUNT, 'write_mode = "single"\nscript_backoff_seconds = 10'),
        ["cloudflare.write_mode", "cloudflare.script_backoff_seconds"],
        [],
    ),
    "cloudflare, restart": Case(
        after(ACCOUNT, 'api_base = "http://127.0.0.1:9/client/v4"\nwrite_mode = "single"'),
        ["cloudflare.write_mode"],
        ["cloudflare.api_base"],
    ),
    "logging": Case(appended('[logging]\nlevel = "debug"\nformat = "json"'), ["logging.format", "logging.level"], []),
    "state": Case(appended("[state.kubernetes]\nsecret_count = 8"), [], ["state.kubernetes"]),
    "leader_election": Case(appended('[leader_election]\nlease_name = "other"'), [], ["leader_election.lease_name"]),
    "server, applied": Case(
        after("enabled = false", "healthz_max_cycle_age_seconds = 5"), ["server.healthz_max_cycle_age_seconds"], []
    ),
    "server, restart": Case(after("enabled = false", "port = 9999"), [], ["server.port"]),
    "vault": Case(
        lambda text: text.replace('127.0.0.1:1"', "127.0.0.1:2\"\nnamespace = 'team'"),
        [],
        ["vault.address", "vault.namespace"],
    ),
    "notifications": Case(appended("[notifications]\ndebounce_seconds = 1"), [], ["notifications.debounce_seconds"]),
    "sync": Case(
        after("interval_seconds = 30", 'on_delete = "delete"\nstate_path = "/tmp/x"'),
        ["sync.on_delete"],
        ["sync.state_path"],
    ),
    "mapping": Case(lambda _: config_with("alpha", "beta", "gamma"), ["mapping"], []),
}


@pytest.mark.parametrize("case", CASES)
def test_each_changed_key_is_applied_or_said_to_need_a_restart(harness: Harness, case: str) -> None:
    edit, applied, restart = CASES[case].edit, CASES[case].applied, CASES[case].restart
    old = harness.service.settings
    harness.path.write_text(edit(BASE))
    loaded = load_config(harness.path)
    with capture_logs() as logs:
        assert harness.service.reload() is True
    warnings = [e for e in logs if e["log_level"] == "warning"]
    [done] = [e for e in logs if e["event"] == "configuration reloaded"]
    assert sorted(done["applied"]) == sorted(applied)
    if restart:
        [warning] = warnings
        assert sorted(warning["keys"]) == sorted(restart)
        assert warning["sections"] == sorted({key.split(".")[0] for key in restart})
    else:
        assert warnings == []
    now = harness.service.settings
    engine = harness.reconciler.settings_updates[-1]
    for key in applied:
        assert at(now, key) == at(loaded, key) != at(old, key), key
        assert at(engine, key) == at(loaded, key), key
    for key in restart:
        assert at(now, key) == at(old, key) != at(loaded, key), key
        assert at(engine, key) == at(old, key), key


def test_a_changed_logging_section_is_applied_to_the_running_log(harness: Harness) -> None:
    harness.path.write_text(BASE + '\n[logging]\nlevel = "warning"\n')
    assert harness.service.reload()
    assert harness.applied_logging == [LoggingSettings(level="warning")]
    assert harness.service.reload()  # unchanged since: not applied again
    assert len(harness.applied_logging) == 1


def test_by_default_a_reload_sets_the_new_log_level(tmp_path: Path, json_logs: LogCapture) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text(BASE)
    service = Service(load_config(path), path, ServiceParts(FakeReconciler([]), FakeState(), FakeMetrics()))
    assert logging.getLogger().level == logging.DEBUG  # json_logs: debug and above, into a buffer
    path.write_text(BASE + '\n[logging]\nlevel = "error"\nformat = "json"\n')
    assert service.reload()
    assert logging.getLogger().level == logging.ERROR


def test_a_new_vault_namespace_does_not_filter_notifications_before_the_restart(harness: Harness) -> None:
    harness.path.write_text(BASE.replace('127.0.0.1:1"', "127.0.0.1:1\"\nnamespace = 'team'"))
    assert harness.service.reload()
    # The Vault client still reads outside any namespace: so do the notifications.
    assert paths_to_mappings(harness.service.settings, "secret/data/alpha") == {"alpha"}


def test_the_command_lines_log_flags_win_over_a_reloaded_logging_section(tmp_path: Path, json_logs: LogCapture) -> None:
    from syncd.app.cli import main as cli  # noqa: PLC0415

    args = cli.build_parser().parse_args(["run", "--log-level", "error", "--config", str(tmp_path / "syncd.toml")])
    cli._configure_log_settings(args, LoggingSettings(level="debug"), json_logs.stream, one_shot=False)
    assert logging.getLogger().level == logging.ERROR
