"""Settings and recorders shared by the unit tests of the service's parts."""

from __future__ import annotations

from pathlib import Path

from syncd.app.service.running import SettingsInForce
from syncd.config import Settings, load_config
from syncd.engine.report import CycleReport, Trigger
from tests.app.test_service import config_with


def settings_of(tmp_path: Path, *names: str, extra: str = "", text: str | None = None) -> Settings:
    """A config with these mappings (``config_with``: cycle timeout 0.2 s, interval 30 s)."""
    path = tmp_path / "syncd.toml"
    path.write_text(text if text is not None else config_with(*names, extra=extra))
    return load_config(path)


def in_force(tmp_path: Path, *names: str, extra: str = "") -> SettingsInForce:
    return SettingsInForce(settings_of(tmp_path, *names, extra=extra))


class RecordingOutcomes:
    """``CycleOutcomes`` that keeps what it is told."""

    def __init__(self) -> None:
        self.finished_reports: list[tuple[Trigger, CycleReport]] = []
        self.failures: list[tuple[Trigger, BaseException]] = []

    def finished(self, trigger: Trigger, report: CycleReport) -> None:
        self.finished_reports.append((trigger, report))

    def failed(self, trigger: Trigger, error: BaseException) -> None:
        self.failures.append((trigger, error))
