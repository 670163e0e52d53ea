"""``syncd devstack --write-config``: the written file loads with syncd's own loader and works.

The devstack runs as a subprocess (as a person would start it); the test then follows the printed
steps: seed the sample secret, ``syncd once`` with the written config, enable the socket audit
device towards the address the config listens on (issue 11, item 7).
"""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syncd.app.cli.main import main as syncd_main
from syncd.config import load_config
from syncd.devstack.write_config import WrittenConfig, instructions
from tests.devstack.test_cli import READY_DEADLINE_SECONDS, read_line_before

CANARY = "canary-devstack-config-81c2"


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path, subprocess.Popen[str]]]:
    config = tmp_path / "dev" / "syncd.toml"
    command = [sys.executable, "-m", "syncd.devstack", "--vault-port", "0", "--cloudflare-port", "0"]
    process = subprocess.Popen(
        [*command, "--write-config", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        described = json.loads(read_line_before(process, time.monotonic() + READY_DEADLINE_SECONDS))
        yield described, config, process
    finally:
        process.kill()
        process.communicate(timeout=10)


def test_the_written_config_loads_and_syncs_the_seeded_sample_secret(
    started: tuple[dict[str, str], Path, subprocess.Popen[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    described, config, _ = started
    settings = load_config(config)  # syncd's real loader: valid as written
    mapping = settings.mappings[0]
    assert settings.vault.address == described["vault_addr"]
    assert settings.cloudflare.account_id == described["cloudflare_account_id"]
    assert mapping.target.script == "my-worker"
    token_files = [config.with_name("syncd.vault-token"), config.with_name("syncd.cloudflare-token")]
    for path in token_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token_files[0].read_text() == described["vault_token"]
    assert described["vault_token"] not in config.read_text()
    assert described["cloudflare_api_token"] not in config.read_text()

    written = _written(config, described, settings.notifications.audit_listen or "")
    url, body = written.seed_request(CANARY)
    seeded = httpx.post(url, json=body, headers={"X-Vault-Token": described["vault_token"]}, timeout=10)
    assert seeded.status_code == 200

    assert syncd_main(["once", "--config", str(config)]) == 0
    out = capsys.readouterr()
    assert CANARY not in out.out + out.err
    admin = described["cloudflare_api_base"].removesuffix("/client/v4")
    account = described["cloudflare_account_id"]
    worker = httpx.get(f"{admin}/__devstack/accounts/{account}/workers/scripts/my-worker", timeout=10).json()
    assert worker["secrets"]["API_KEY"]["text"] == CANARY


def test_the_printed_audit_command_reaches_the_configured_listener(
    started: tuple[dict[str, str], Path, subprocess.Popen[str]],
) -> None:
    described, config, _ = started
    settings = load_config(config)
    listen = settings.notifications.audit_listen or ""
    host, port = listen.rsplit(":", 1)
    written = _written(config, described, listen)
    with socket.create_server((host, int(port))) as server:
        server.settimeout(10)
        url, body = written.audit_request()
        enabled = httpx.put(url, json=body, headers={"X-Vault-Token": described["vault_token"]}, timeout=10)
        assert enabled.status_code == 204
        connection, _ = server.accept()
        with connection:
            connection.settimeout(10)
            probe = json.loads(connection.makefile().readline())
    assert probe["request"]["path"] == "sys/audit/test"


def test_the_printed_steps_name_the_address_the_token_file_and_the_config(
    started: tuple[dict[str, str], Path, subprocess.Popen[str]],
) -> None:
    described, config, process = started
    process.kill()
    _, stderr = process.communicate(timeout=10)
    assert f"wrote {config.resolve()}" in stderr
    assert "vault kv put -mount=secret my-app api_key=" in stderr
    assert f"VAULT_ADDR={described['vault_addr']}" in stderr
    assert f"$(cat {config.resolve().with_name('syncd.vault-token')})" in stderr
    assert f"syncd once --config {config.resolve()}" in stderr
    assert "vault audit enable -path=syncd socket address=127.0.0.1:" in stderr
    assert described["vault_token"] not in stderr


def test_instructions_quote_paths_for_the_shell(tmp_path: Path) -> None:
    odd = tmp_path / "my dir" / "syncd.toml"
    written = WrittenConfig(
        odd, odd.with_name("syncd.vault-token"), odd.with_name("c"), odd.with_name("s"), "http://v:1", "w", "h:2"
    )
    assert f"syncd once --config '{odd}'" in instructions(written)


def _written(config: Path, described: dict[str, str], audit_listen: str) -> WrittenConfig:
    resolved = config.resolve()
    return WrittenConfig(
        resolved,
        resolved.with_name("syncd.vault-token"),
        resolved.with_name("syncd.cloudflare-token"),
        resolved.with_name("syncd.state.sqlite3"),
        described["vault_addr"],
        "my-worker",
        audit_listen,
    )
