"""Drift through the real service wiring: the drift job finds hand edits on its schedule (fake time),
the service reconciles the drifted mappings (a KV v2 one and a KV v1 one), and an operator sees it
in the log, the metrics and ``/status``; no value anywhere."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.app.service.daemon import DRIFT_JOB, STARTUP_JOB, TOKEN_JOB
from syncd.app.service.wiring import build_service
from syncd.config import load_config
from tests.app.service_conftest_helpers import (
    CANARIES,
    CANARY_API_KEY,
    CANARY_V1,
    OTHER_SCRIPT,
    SCRIPT,
    config_text,
    running_stack,
)
from tests.app.test_metrics_end_to_end import _value
from tests.app.test_service import RecordingScheduler


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_hand_edits_are_found_by_the_drift_job_and_corrected_by_the_service(
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
        skipped = [0.0]

        def clock() -> float:
            return time.time() + skipped[0]

        service = build_service(load_config(path), path, scheduler=scheduler, clock=clock)
        service.start()
        try:
            url = service.server.url  # type: ignore[union-attr]
            scheduler.run(TOKEN_JOB)
            scheduler.run(STARTUP_JOB)
            assert DRIFT_JOB in scheduler.jobs
            skipped[0] += 301.0  # one drift check interval: every script is due
            scheduler.run(DRIFT_JOB)  # the baseline: nothing drifted
            assert not [j for j in scheduler.jobs if j.startswith("manual")]

            stack.cf.hand_edit(SCRIPT, deletes=["API_KEY"])
            by_hand = {"name": "SEARCH_TOKEN", "type": "secret_text", "text": "by-hand"}
            stack.cf.hand_edit(OTHER_SCRIPT, upserts={"SEARCH_TOKEN": by_hand})
            skipped[0] += 301.0
            with capture_logs() as logs:
                scheduler.run(DRIFT_JOB)
                (manual,) = [j for j in scheduler.jobs if j.startswith("manual")]
                scheduler.run(manual)

            assert stack.cf.secrets_of(SCRIPT)["API_KEY"]["text"] == CANARY_API_KEY
            assert stack.cf.secrets_of(OTHER_SCRIPT)["SEARCH_TOKEN"]["text"] == CANARY_V1
            detected = {e["script"]: e for e in logs if e["event"] == "drift.detected"}
            assert detected[SCRIPT]["kind"] == "missing" and detected[SCRIPT]["bindings"] == ["API_KEY"]
            assert detected[OTHER_SCRIPT]["kind"] == "overwritten"
            assert detected[OTHER_SCRIPT]["author"] == "someone.else@example.com"
            corrected = sorted(e["mapping"] for e in logs if e["event"] == "drift.corrected")
            assert corrected == ["app-api", "search-v1"]
            metrics = _get(url + "/metrics")
            for mapping in ("app-api", "search-v1"):
                assert _value(metrics, "syncd_drift_detected_total", mapping=mapping) == 1
                assert _value(metrics, "syncd_drift_corrected_total", mapping=mapping) == 1
                assert _value(metrics, "syncd_mapping_in_sync", mapping=mapping) == 1
            status = _get(url + "/status")
            assert all(m["in_sync"] and m["staged_version"] is None for m in json.loads(status)["mappings"])
            skipped[0] += 301.0
            with capture_logs() as later:
                scheduler.run(DRIFT_JOB)  # syncd's own corrections are not drift
            assert not [e for e in later if e["event"] == "drift.detected"]
            leaks = [i for i, canary in enumerate(CANARIES) if canary in metrics + status + repr(logs) + repr(later)]
            assert not leaks, f"canaries #{leaks} leaked"
        finally:
            service.shutdown()
