"""``syncd devstack --write-config PATH``: a ready syncd config for the emulators just started.

Writes, for one running devstack:

- ``PATH``: a syncd TOML config with the emulators' addresses and account id, one sample mapping
  (Vault ``secret/my-app`` key ``api_key`` -> binding ``API_KEY`` on the first ``--script``), a
  state file beside it and ``[notifications] audit_listen`` on a free loopback port;
- ``<stem>.vault-token`` and ``<stem>.cloudflare-token`` beside it, mode 0600, which the config
  references as ``{ file = ... }`` (the tokens change at every devstack start, the file names not).

``instructions`` renders the commands that seed the sample secret (``vault kv put`` or ``curl``)
and enable Vault's socket audit device towards ``syncd run``. The devstack never imports the
daemon, so the TOML text is rendered here; ``tests/devstack/test_write_config.py`` loads it with
syncd's real ``load_config`` and runs ``syncd once`` with it.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_MOUNT = "secret"
SAMPLE_PATH = "my-app"
SAMPLE_KEY = "api_key"
SAMPLE_BINDING = "API_KEY"
DEFAULT_SCRIPT = "my-worker"
AUDIT_DEVICE_PATH = "syncd"


@dataclass(frozen=True)
class WrittenConfig:
    config: Path
    vault_token_file: Path
    cloudflare_token_file: Path
    state: Path
    vault_addr: str
    script: str
    audit_listen: str  # "HOST:PORT" that `syncd run` listens on for Vault's audit stream

    def seed_request(self, value: str) -> tuple[str, dict[str, Any]]:
        """(URL, JSON body) of the KV v2 write that seeds the sample secret."""
        return f"{self.vault_addr}/v1/{SAMPLE_MOUNT}/data/{SAMPLE_PATH}", {"data": {SAMPLE_KEY: value}}

    def audit_request(self) -> tuple[str, dict[str, Any]]:
        """(URL, JSON body) of the ``PUT`` that enables the socket audit device towards syncd."""
        options = {"address": self.audit_listen, "socket_type": "tcp"}
        return f"{self.vault_addr}/v1/sys/audit/{AUDIT_DEVICE_PATH}", {"type": "socket", "options": options}


def write_devstack_config(path: Path, described: dict[str, str], script: str) -> WrittenConfig:
    """Write the config and its credential files for the devstack ``described`` (``Devstack.describe()``)."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    written = WrittenConfig(
        config=path,
        vault_token_file=path.with_name(path.stem + ".vault-token"),
        cloudflare_token_file=path.with_name(path.stem + ".cloudflare-token"),
        state=path.with_name(path.stem + ".state.sqlite3"),
        vault_addr=described["vault_addr"],
        script=script,
        audit_listen=f"127.0.0.1:{_free_port()}",
    )
    _write_private(written.vault_token_file, described["vault_token"])
    _write_private(written.cloudflare_token_file, described["cloudflare_api_token"])
    path.write_text(render_config(written, described), encoding="utf-8")
    return written


def render_config(written: WrittenConfig, described: dict[str, str]) -> str:
    q = json.dumps  # a JSON string is a valid TOML basic string
    return f"""# Written by `syncd devstack --write-config` for the emulators it started; valid while they run
# (their tokens and account id change at every start: write it again then).

[vault]
address = {q(written.vault_addr)}

[vault.auth]
method = "token"
token = {{ file = {q(str(written.vault_token_file))} }}

[cloudflare]
api_base = {q(described["cloudflare_api_base"])}
account_id = {q(described["cloudflare_account_id"])}

[cloudflare.auth]
api_token = {{ file = {q(str(written.cloudflare_token_file))} }}

[sync]
state_path = {q(str(written.state))}
interval_seconds = 30

[server]
bind = "127.0.0.1"
port = 8080

[notifications]
audit_listen = {q(written.audit_listen)}

[logging]
format = "console"
level = "info"

[[mapping]]
name = "my-app"
vault = {{ mount = {q(SAMPLE_MOUNT)}, path = {q(SAMPLE_PATH)}, kv_version = 2 }}
target = {{ script = {q(written.script)} }}
secret_text = {{ keys = {{ {SAMPLE_KEY} = {q(SAMPLE_BINDING)} }} }}
"""


def instructions(written: WrittenConfig) -> str:
    """What to run next: seed the sample secret, run syncd, enable the audit device."""
    token = f'"$(cat {shlex.quote(str(written.vault_token_file))})"'
    env = f"VAULT_ADDR={shlex.quote(written.vault_addr)} VAULT_TOKEN={token}"
    config = shlex.quote(str(written.config))
    seed_url, seed_body = written.seed_request("s3cr3t-value")
    audit_url, audit_body = written.audit_request()
    return "\n".join(
        [
            f"syncd devstack: wrote {written.config}",
            f"  credentials (mode 0600): {written.vault_token_file}, {written.cloudflare_token_file}",
            f"  sample mapping: Vault {SAMPLE_MOUNT}/{SAMPLE_PATH} key {SAMPLE_KEY} -> {SAMPLE_BINDING} on "
            f"Worker {written.script}",
            "Seed the secret (either command):",
            f"  {env} vault kv put -mount={SAMPLE_MOUNT} {SAMPLE_PATH} {SAMPLE_KEY}=s3cr3t-value",
            f'  curl -sS -X POST -H "X-Vault-Token: {token[1:-1]}" -d {shlex.quote(json.dumps(seed_body))} '
            f"{shlex.quote(seed_url)}",
            "Sync once, or run the service:",
            f"  syncd once --config {config}",
            f"  syncd run --config {config}",
            f"With `syncd run` listening on {written.audit_listen}, send Vault's audit stream to it (either):",
            f"  {env} vault audit enable -path={AUDIT_DEVICE_PATH} socket address={written.audit_listen} "
            "socket_type=tcp",
            f'  curl -sS -X PUT -H "X-Vault-Token: {token[1:-1]}" -d {shlex.quote(json.dumps(audit_body))} '
            f"{shlex.quote(audit_url)}",
        ]
    )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
