"""jinja2 is loaded only when a configuration has a template: it costs every process ~3 MiB of RSS
(``bench/README.md``, memory), and most configurations have none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PROBE = """
import sys
from syncd.app.cli import main
from syncd.app.service import wiring
from syncd.config import load_config
load_config(sys.argv[1])
print("jinja2" in sys.modules)
"""


def _jinja_loaded(config: Path) -> bool:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.strip() == "True"


def _config(tmp_path: Path, mapping: str) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(
        '[vault]\naddress = "https://vault.example.com:8200"\n'
        '[cloudflare]\naccount_id = "0123456789abcdef0123456789abcdef"\n' + mapping,
        encoding="utf-8",
    )
    return path


def test_a_config_without_templates_never_loads_jinja2_and_one_with_a_template_does(tmp_path: Path) -> None:
    plain = '[[mapping]]\nname = "m"\nvault = { mount = "secret", path = "app" }\ntarget = { script = "w" }\n'
    plain += 'secret_text = { keys = { k = "K" } }\n'
    assert _jinja_loaded(_config(tmp_path, plain)) is False
    templated = '[[mapping]]\nname = "m"\nvault = { mount = "secret", path = "app" }\ntarget = { script = "w" }\n'
    templated += '[mapping.templates]\nURL = "x{{ vault.k }}"\n'
    assert _jinja_loaded(_config(tmp_path, templated)) is True
