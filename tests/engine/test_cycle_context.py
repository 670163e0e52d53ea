"""Every log line of a cycle carries its cycle id, also lines from the Vault worker threads."""

from __future__ import annotations

from pathlib import Path

import structlog
from structlog.testing import capture_logs

from syncd.engine.reconciler import Reconciler
from syncd.engine.report import Trigger
from syncd.engine.state import StateStore
from syncd.model import KvVersion, VaultSecretRef, VersionInfo
from tests.engine.fakes import FakeSource, FakeWorkers, keys_mapping, make_settings


class BrokenForOnePath(FakeSource):
    """A bug in the reader for one path: logged from a Vault worker thread."""

    def current_version(self, ref: VaultSecretRef, kv_version: KvVersion) -> VersionInfo:
        if ref.path == "broken":
            raise RuntimeError("reader bug")
        return super().current_version(ref, kv_version)


def test_push_and_failure_lines_carry_the_reports_cycle_id(tmp_path: Path) -> None:
    source, workers = BrokenForOnePath(), FakeWorkers()
    workers.add_script("script-a")
    source.put("app", {"k": "v"})
    settings = make_settings(
        [keys_mapping("ok", "app", "script-a", {"k": "K"}), keys_mapping("gone", "broken", "script-a", {"k": "G"})]
    )
    state = StateStore.open(tmp_path / "state.sqlite3")
    try:
        reconciler = Reconciler(settings, source, workers, state, concurrency=2)
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            report = reconciler.reconcile(trigger=Trigger.MANUAL)
    finally:
        state.close()
    assert {r.mapping: r.failed for r in report.results} == {"ok": False, "gone": True}
    events = {entry["event"] for entry in logs}
    assert {"push", "mapping.internal_error"} <= events
    assert logs and all(entry.get("cycle_id") == report.cycle_id for entry in logs), logs
    assert all(entry.get("trigger") == "manual" for entry in logs)
    assert structlog.contextvars.get_contextvars() == {}  # nothing leaks past the cycle
