"""Command-line conventions an operator expects (issue 11): options before the command, help with
examples and exit codes, one mapping at a time, plan's detailed exit code, a closed pipe, quiet
one-shot logs on a terminal, retry lines that say what was retried."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import stamina.instrumentation
from structlog.testing import capture_logs

from syncd.app.service.http_server import OpsServer
from syncd.app.service.logs import configure_logging, log_retry
from syncd.app.service.metrics import Metrics
from syncd.errors import CloudflareServerError
from tests.app.conftest import run_cli as run
from tests.app.service_conftest_helpers import (
    CANARY_ROTATED,
    CANARY_WEBHOOK,
    SCRIPT,
    Stack,
)


def test_global_options_work_before_the_command(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--config", str(config), "--log-level", "error", "once")
    assert code == 0
    assert "ok   app-api" in out


def test_an_option_after_the_command_wins_over_one_before(
    stack: Stack, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--config", str(tmp_path / "nowhere.toml"), "status", "--config", str(config))
    assert code in (0, 1)
    assert "nowhere.toml" not in err


def test_bare_syncd_prints_the_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 2
    assert "usage: syncd" in err and "exit codes:" in err and "once" in err
    assert out == ""


@pytest.mark.parametrize("command", ["run", "once", "plan", "check", "status"])
def test_every_command_help_has_a_description_examples_and_exit_codes(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert "examples:" in out and f"syncd {command}" in out.split("examples:")[1]
    assert "exit codes:" in out and "2  bad configuration or usage" in out


def test_run_and_status_help_give_their_own_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    # run does not exit "all mappings in sync", and status only reads: no lock can refuse it.
    _, run_help, _ = run(capsys, "run", "--help")
    assert "0  stopped by SIGTERM or SIGINT" in run_help and "all mappings in sync" not in run_help
    _, status_help, _ = run(capsys, "status", "--help")
    assert "held by another syncd process" not in status_help and "(check:" not in status_help


def test_once_and_plan_can_be_limited_to_one_mapping(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "plan", "--config", str(config), "--mapping", "search-v1")
    assert code == 0
    assert "search-v1" in out and "app-api" not in out
    code, out, _ = run(capsys, "once", "--config", str(config), "--mapping", "search-v1")
    assert code == 0
    assert [line.split()[1] for line in out.splitlines()] == ["search-v1"]
    assert stack.cf.secrets_of(SCRIPT) == {}  # app-api's script was not written


def test_an_unknown_mapping_is_a_usage_error_naming_it(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "once", "--config", str(config), "--mapping", "app-apj")
    assert code == 2
    assert "'app-apj'" in err and "app-api" in err
    assert stack.cloudflare_calls() == []


def test_a_huge_unknown_mapping_name_is_not_echoed_whole(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "plan", "--config", str(config), "--mapping", "x" * 200_000)
    assert code == 2
    assert len(err) < 1_000


def test_plan_detailed_exitcode_is_3_with_pending_changes_and_0_in_sync(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "plan", "--config", str(config), "--detailed-exitcode")[0] == 3
    assert run(capsys, "plan", "--config", str(config))[0] == 0  # without the flag: 0
    assert run(capsys, "once", "--config", str(config))[0] == 0
    code, out, _ = run(capsys, "plan", "--config", str(config), "--detailed-exitcode")
    assert code == 0
    assert out.strip().splitlines()[-1] == "plan: no changes; 2 mapping(s): 2 in sync"
    stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)
    assert run(capsys, "plan", "--config", str(config), "--detailed-exitcode")[0] == 3


def test_a_closed_pipe_ends_quietly(stack: Stack, config: Path) -> None:
    env = {**os.environ, "SYNCD_TEST_VAULT_TOKEN": stack.vault.root_token, "SYNCD_TEST_CF_TOKEN": stack.cf.api_token}
    process = subprocess.Popen(
        [sys.executable, "-m", "syncd", "check", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()  # `| head -1`
    process.stdout.close()
    err = process.stderr.read().decode()
    code = process.wait(timeout=30)
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert code in (0, 141)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _level_after(argv: list[str], config: Path, capsys: pytest.CaptureFixture[str], stream: io.StringIO) -> int:
    from syncd.app.cli import main as cli  # noqa: PLC0415

    args = cli.build_parser().parse_args([*argv, "--config", str(config)])
    cli._configure_logs(args, cli._load(args), stream)
    return logging.getLogger().level


def test_one_shot_commands_on_a_terminal_log_warnings_only_unless_asked(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _level_after(["once"], config, capsys, _Terminal()) == logging.WARNING
    assert _level_after(["once", "--log-level", "info"], config, capsys, _Terminal()) == logging.INFO
    assert _level_after(["once"], config, capsys, io.StringIO()) < logging.WARNING  # redirected: the config's level


def test_a_retry_line_names_the_error_not_a_context_block() -> None:
    configure_logging(format="json", level="info", stream=io.StringIO())
    assert stamina.instrumentation.get_on_retry_hooks() == (log_retry,)
    details = stamina.instrumentation.RetryDetails(
        name="<context block>",
        args=(),
        kwargs={},
        retry_num=2,
        wait_for=0.5,
        waited_so_far=0.7,
        caused_by=CloudflareServerError("PATCH .../scripts/app/secrets-bulk answered 503", status=503),
    )
    with capture_logs() as logs:
        log_retry(details)
    assert logs == [
        {
            "event": "retry",
            "log_level": "warning",
            "attempt": 2,
            "wait_s": 0.5,
            "waited_s": 0.7,
            "error_type": "CloudflareServerError",
            "error_code": "CloudflareServerError",
            "error": "PATCH .../scripts/app/secrets-bulk answered 503",
        }
    ]


def test_check_names_the_vault_address_it_cannot_reach(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{unused.getsockname()[1]}"
    config.write_text(config.read_text().replace(stack.vault.url, dead))
    code, out, _ = run(capsys, "check", "--config", str(config))
    assert code == 1
    assert f"cannot reach Vault at {dead}" in out


def test_a_taken_ops_port_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = OpsServer(_NoStatus(), Metrics(), bind="127.0.0.1", port=port, trigger_token=None)
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            server.start()


class _NoStatus:
    def healthz(self) -> tuple[bool, dict[str, Any]]:
        return True, {}

    def readyz(self) -> tuple[bool, dict[str, Any]]:
        return True, {}

    def status(self) -> dict[str, Any]:
        return {}

    def trigger(self, mapping: str | None) -> tuple[int, dict[str, Any]]:
        return 202, {}


def test_once_refuses_a_kubernetes_state_that_the_leader_writes(
    stack: Stack, config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_TEST_FINGERPRINT_KEY", "k" * 40)
    text = config.read_text().replace(
        "[server]", '[state]\nbackend = "kubernetes"\n\n[server]'
    ).replace("[sync]\n", '[sync]\nfingerprint_key = { env = "SYNCD_TEST_FINGERPRINT_KEY" }\n', 1)
    config.write_text(text)
    code, _, err = run(capsys, "once", "--config", str(config))
    assert code == 2
    assert "POST /trigger on the leader" in err
    assert stack.cloudflare_calls() == []
