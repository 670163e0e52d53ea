"""Scraped over HTTP from the real service: the metrics move as rotations and failures happen."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from syncd.app.service.daemon import STARTUP_JOB, TOKEN_JOB
from syncd.app.service.wiring import build_service
from syncd.config import load_config
from tests.app.service_conftest_helpers import (
    CANARIES,
    CANARY_ROTATED,
    CANARY_WEBHOOK,
    SCRIPT,
    config_text,
    running_stack,
)
from tests.app.test_service import RecordingScheduler


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        return str(response.read().decode())


def _value(text: str, name: str, **labels: str) -> float:
    """The sample's value, 0 when absent; labels must all match (in any order)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_follow_rotations_and_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_stack(monkeypatch) as stack:
        path = tmp_path / "syncd.toml"
        path.write_text(
            config_text(stack, tmp_path / "state.sqlite3").replace(
                "[server]\nenabled = false", '[server]\nenabled = true\nbind = "127.0.0.1"\nport = 0'
            )
        )
        scheduler = RecordingScheduler()
        service = build_service(load_config(path), path, scheduler=scheduler)
        service.start()
        try:
            url = service.server.url  # type: ignore[union-attr]
            scheduler.run(TOKEN_JOB)
            scheduler.run(STARTUP_JOB)
            first = _scrape(url)
            assert _value(first, "syncd_mapping_in_sync", mapping="app-api") == 1
            assert _value(first, "syncd_pushes_total", mapping="app-api", script=SCRIPT, outcome="ok") == 1
            assert _value(first, "syncd_cycles_total", trigger="startup", outcome="ok") == 1
            assert _value(first, "syncd_vault_requests_total", operation="metadata_read", outcome="ok") >= 1
            assert _value(first, "syncd_cloudflare_requests_total", operation="bulk_update", outcome="ok") == 2
            delays_before = _value(first, "syncd_propagation_delay_seconds_count")

            stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)
            assert service.run_cycle("manual") is not None
            rotated = _scrape(url)
            assert _value(rotated, "syncd_pushes_total", mapping="app-api", script=SCRIPT, outcome="ok") == 2
            assert _value(rotated, "syncd_propagation_delay_seconds_count") == delays_before + 1
            assert _value(rotated, "syncd_mapping_last_success_timestamp_seconds", mapping="app-api") > 0

            stack.cf.set_undeployed(SCRIPT, True)
            stack.write_api(CANARY_WEBHOOK, CANARY_ROTATED)
            assert service.run_cycle("manual") is not None
            failed = _scrape(url)
            assert _value(failed, "syncd_mapping_in_sync", mapping="app-api") == 0
            assert _value(failed, "syncd_mapping_in_sync", mapping="search-v1") == 1
            assert (
                _value(failed, "syncd_mapping_failures_total", mapping="app-api", reason="CloudflareNotDeployed") == 1
            )
            assert _value(failed, "syncd_cycles_total", trigger="manual", outcome="failed") == 1
            assert _value(failed, "syncd_pushes_total", mapping="app-api", script=SCRIPT, outcome="error") == 1

            stack.cf.set_undeployed(SCRIPT, False)
            assert service.run_cycle("manual") is not None
            healed = _scrape(url)
            assert _value(healed, "syncd_mapping_in_sync", mapping="app-api") == 1
            leaks = [i for i, canary in enumerate(CANARIES) if canary in first + rotated + failed + healed]
            assert not leaks, f"canaries #{leaks} appear in /metrics"
            assert not re.search(
                r'mapping="[^"]*"', healed.replace('mapping="app-api"', "").replace('mapping="search-v1"', "")
            ), "a mapping label outside the configuration"
        finally:
            service.shutdown()
