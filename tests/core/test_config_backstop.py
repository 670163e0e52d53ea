"""``[sync] backstop_interval_seconds`` and the natural edit of the example config (issue 16)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from syncd.config import parse_config
from syncd.errors import ConfigError
from tests.core.test_config import BASE, EXAMPLE


def test_the_example_config_with_a_longer_interval_loads_and_the_backstop_follows_it() -> None:
    text, count = re.subn(r"^interval_seconds = 30\b", "interval_seconds = 600", EXAMPLE.read_text(), flags=re.M)
    assert count == 1
    settings = parse_config(text, str(EXAMPLE))
    assert settings.sync.interval_seconds == 600
    assert settings.sync.backstop_seconds == 600  # unset in the example: 300, or a longer interval


def test_the_example_documents_the_backstop_default_without_setting_it() -> None:
    settings = parse_config(EXAMPLE.read_text(), str(EXAMPLE))
    assert settings.sync.backstop_interval_seconds is None and settings.sync.backstop_seconds == 300
    assert re.search(r"^# backstop_interval_seconds = 300\b", EXAMPLE.read_text(), flags=re.M)


def test_an_explicit_backstop_shorter_than_the_interval_says_how_to_fix_it(tmp_path: Path) -> None:
    text = BASE + "[sync]\ninterval_seconds = 600\nbackstop_interval_seconds = 300\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "syncd.toml")
    (problem,) = caught.value.problems
    assert problem.key == "sync.backstop_interval_seconds"
    assert "backstop_interval_seconds (300) must be at least interval_seconds (600)" in problem.message
    assert "remove it" in problem.message


def test_a_backstop_at_least_the_interval_is_kept() -> None:
    settings = parse_config(BASE + "[sync]\ninterval_seconds = 60\nbackstop_interval_seconds = 900\n")
    assert settings.sync.backstop_seconds == 900
