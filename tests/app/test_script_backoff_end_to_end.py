"""A script answering 5xx, seen by an operator through the real service over HTTP: ``/status``
lists it as backed off, ``syncd_script_backoff{account,script}`` is 1 while it is, the other
script's mapping stays in sync, one log line per state change, and both clear once it recovers."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

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
from tests.app.test_metrics_end_to_end import _value
from tests.app.test_service import RecordingScheduler


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def _backoff_lines(logs: list[Any]) -> list[str]:
    return [entry["change"] for entry in logs if entry.get("event") == "script.backoff"]


def test_a_script_answering_5xx_is_backed_off_visibly_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_stack(monkeypatch) as stack:
        path = tmp_path / "syncd.toml"
        path.write_text(
            config_text(stack, tmp_path / "state.sqlite3").replace(
                "[server]\nenabled = false", '[server]\nenabled = true\nbind = "127.0.0.1"\nport = 0'
            )
        )
        scheduler = RecordingScheduler()
        skipped = [0.0]  # seconds the service's clock is ahead of the wall clock

        def clock() -> float:
            return time.time() + skipped[0]

        service = build_service(load_config(path), path, scheduler=scheduler, clock=clock)
        service.start()
        faults = f"{stack.cf.url}/__devstack/faults"
        try:
            url = service.server.url  # type: ignore[union-attr]
            scheduler.run(TOKEN_JOB)
            scheduler.run(STARTUP_JOB)
            assert json.loads(_get(url + "/status"))["scripts"] == []

            stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)
            fault = {"method": "PATCH", "path": f"*/scripts/{SCRIPT}/secrets-bulk", "status": 503, "count": 100}
            httpx.post(faults, json=fault).raise_for_status()
            with capture_logs() as logs:
                assert service.run_cycle("manual") is not None
                assert service.run_cycle("manual") is not None  # skipped: no second log line
            status = json.loads(_get(url + "/status"))
            (script,) = status["scripts"]
            assert script["script"] == SCRIPT and script["state"] == "backed_off"
            assert script["consecutive_failures"] == 1 and script["backoff_seconds"] == 30.0
            assert script["next_retry_at"] > 0 and script["last_error_code"] == "CloudflareServerError"
            failed = {f["mapping"]: f["error_code"] for f in status["last_cycle"]["failed"]}
            assert failed == {"app-api": "ScriptBackedOff"}  # search-v1 (another script) is fine
            metrics = _get(url + "/metrics")
            labels = {"account": stack.cf.account_id, "script": SCRIPT}
            assert _value(metrics, "syncd_script_backoff", **labels) == 1
            assert _value(metrics, "syncd_script_backoff_seconds", **labels) == 30.0
            assert _backoff_lines(logs) == ["entered"]

            httpx.delete(faults).raise_for_status()
            skipped[0] += 36.0  # the backoff (30 s, plus at most 6 s of jitter) has passed: the next cycle retries
            with capture_logs() as logs:
                assert service.run_cycle("manual") is not None
            assert json.loads(_get(url + "/status"))["scripts"] == []
            healed = _get(url + "/metrics")
            assert "syncd_script_backoff{" not in healed
            assert _value(healed, "syncd_mapping_in_sync", mapping="app-api") == 1
            assert _backoff_lines(logs) == ["recovered"]
            leaks = [i for i, canary in enumerate(CANARIES) if canary in metrics + healed + repr(logs)]
            assert not leaks, f"canaries #{leaks} leaked"
        finally:
            service.shutdown()
