"""The benchmark's workload: N single-key KV v2 secrets mapped to Worker scripts, and its config.

Path ``bench/p00042`` holds one key ``value``; it is mapped to binding ``S00042`` on script
``bench-000`` (``bindings_per_script`` paths per script, at most 100 so that one bulk call covers a
script and Cloudflare's 128 variables per Worker are never reached).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bench._stack import Endpoints
from syncd.config import Settings, parse_config

MAX_BINDINGS_PER_SCRIPT = 100


@dataclass(frozen=True)
class Workload:
    paths: int
    bindings_per_script: int = MAX_BINDINGS_PER_SCRIPT

    def __post_init__(self) -> None:
        if self.paths < 1:
            raise ValueError("at least one path")
        if not 1 <= self.bindings_per_script <= MAX_BINDINGS_PER_SCRIPT:
            raise ValueError(f"bindings per script must be 1..{MAX_BINDINGS_PER_SCRIPT}")

    @property
    def scripts(self) -> list[str]:
        return [self.script_of(i) for i in range(0, self.paths, self.bindings_per_script)]

    def path(self, index: int) -> str:
        return f"bench/p{index:05d}"

    def binding(self, index: int) -> str:
        return f"S{index:05d}"

    def script_of(self, index: int) -> str:
        return f"bench-{index // self.bindings_per_script:03d}"

    def paths_of_script(self, script_number: int) -> list[int]:
        first = script_number * self.bindings_per_script
        return list(range(first, min(first + self.bindings_per_script, self.paths)))

    @property
    def script_count(self) -> int:
        return math.ceil(self.paths / self.bindings_per_script)


def config_toml(workload: Workload, endpoints: Endpoints, *, concurrency: int, state_path: Path) -> str:
    """A complete syncd config (inline credentials: the devstack's, development only)."""
    lines = [
        "[vault]",
        f'address = "{endpoints.vault_addr}"',
        f"concurrency = {concurrency}",
        "allow_inline_credentials = true",
        "[vault.auth]",
        'method = "token"',
        f'token = {{ value = "{endpoints.vault_token}" }}',
        "[cloudflare]",
        f'api_base = "{endpoints.cloudflare_api_base}"',
        f'account_id = "{endpoints.cloudflare_account_id}"',
        "allow_inline_credentials = true",
        "[cloudflare.auth]",
        f'api_token = {{ value = "{endpoints.cloudflare_api_token}" }}',
        "[sync]",
        f'state_path = "{state_path}"',
        # The initial sync of 10,000 paths reads every secret twice: far more than the default 120 s
        # would allow on a small machine sharing its cores with the emulators.
        "cycle_timeout_seconds = 1800",
        "[server]",
        "enabled = false",
    ]
    for i in range(workload.paths):
        lines += [
            "[[mapping]]",
            f'name = "bench-{i:05d}"',
            f'vault = {{ mount = "secret", path = "{workload.path(i)}", kv_version = 2 }}',
            f'target = {{ script = "{workload.script_of(i)}" }}',
            f'secret_text = {{ keys = {{ value = "{workload.binding(i)}" }} }}',
        ]
    return "\n".join(lines) + "\n"


def settings_for(workload: Workload, endpoints: Endpoints, *, concurrency: int, state_path: Path) -> Settings:
    text = config_toml(workload, endpoints, concurrency=concurrency, state_path=state_path)
    config_file = state_path.parent / f"syncd-c{concurrency}.toml"
    config_file.write_text(text)
    return parse_config(text, str(config_file))
