"""Vault notification metrics: connection gauges follow real TCP/WebSocket connections from and to the
Vault emulator, delivered writes are counted per source, and only configured sources are exported."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import hvac
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from syncd.app.notify.sources import NotificationSources
from syncd.app.service.daemon import Service, ServiceParts
from syncd.app.service.metrics import Metrics
from syncd.config import Settings, load_config
from syncd.devstack.vault import VaultEmulator
from syncd.engine.drift import DriftCorrection
from syncd.engine.report import CycleReport, Trigger
from syncd.model import SecretValue
from tests.app.test_sync_mode import AUDIT_PROBE
from tests.waiting import wait_until

WAIT = 10.0


def _wait(condition: Callable[[], bool]) -> bool:
    return wait_until(condition, WAIT)


GAUGE = "syncd_vault_notification_connections"
COUNTER = "syncd_vault_notifications_total"
RULES = Path(__file__).resolve().parents[2] / "deploy" / "alerts" / "syncd-rules.yaml"

CONFIG = """
[vault]
address = "{vault}"
[vault.auth]
method = "token"
token = {{ env = "SYNCD_UNUSED_TOKEN" }}
[cloudflare]
account_id = "0123456789abcdef0123456789abcdef"
[cloudflare.auth]
api_token = {{ env = "SYNCD_UNUSED_CF" }}
[server]
enabled = false
[notifications]
debounce_seconds = 0
{notifications}
[[mapping]]
name = "api"
vault = {{ mount = "secret", path = "app/api" }}
target = {{ script = "app-worker" }}
secret_text = {{ keys = {{ api_key = "API_KEY" }} }}
"""
AUDIT = 'audit_listen = "127.0.0.1:0"'
EVENTS = 'vault_events = true\nvault_event_types = ["kv-v2/*"]'


def _settings(tmp_path: Path, vault_url: str, *notifications: str) -> Settings:
    path = tmp_path / "syncd.toml"
    path.write_text(CONFIG.format(vault=vault_url, notifications="\n".join(notifications)))
    return load_config(path)


class RecordingMetrics(Metrics):
    """The real metrics, plus the order in which connection counts were reported."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[tuple[str, int]] = []

    def set_notification_connections(self, source: str, count: int) -> None:
        self.reports.append((source, count))
        super().set_notification_connections(source, count)


def _gauge(metrics: Metrics, source: str) -> float | None:
    return metrics.registry.get_sample_value(GAUGE, {"source": source})


def _count(metrics: Metrics, source: str) -> float | None:
    return metrics.registry.get_sample_value(COUNTER, {"source": source})


class Paths:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[str] = []

    def __call__(self, path: str) -> None:
        with self._lock:
            self.items.append(path)

    def count(self) -> int:
        with self._lock:
            return len(self.items)


@pytest.fixture
def vault() -> Iterator[VaultEmulator]:
    with VaultEmulator() as emulator:
        yield emulator


@pytest.fixture
def root(vault: VaultEmulator) -> hvac.Client:
    return hvac.Client(url=vault.url, token=vault.root_token)


# -- the audit device ------------------------------------------------------------------------------


def test_audit_gauge_is_1_while_vaults_audit_device_is_connected_and_0_once_vault_drops_it(
    tmp_path: Path, vault: VaultEmulator, root: hvac.Client
) -> None:
    metrics, paths = Metrics(), Paths()
    sources = NotificationSources().start(_settings(tmp_path, vault.url, AUDIT), paths, None, metrics)
    try:
        listener = sources.audit_listener
        assert listener is not None
        assert _gauge(metrics, "audit") == 0  # exported before Vault ever connects
        root.sys.enable_audit_device(
            device_type="socket", path="syncd", options={"address": f"127.0.0.1:{listener.port}"}
        )
        assert _wait(lambda: _gauge(metrics, "audit") == 1), "Vault's audit device did not connect"
        root.sys.disable_audit_device("syncd")  # Vault closes the device's connection
        assert _wait(lambda: _gauge(metrics, "audit") == 0), "the gauge did not fall when Vault disconnected"
    finally:
        sources.stop()


def test_audit_gauge_falls_to_0_when_the_listener_drops_vaults_connection(
    tmp_path: Path, vault: VaultEmulator, root: hvac.Client
) -> None:
    metrics = RecordingMetrics()
    sources = NotificationSources().start(_settings(tmp_path, vault.url, AUDIT), Paths(), None, metrics)
    try:
        listener = sources.audit_listener
        assert listener is not None
        root.sys.enable_audit_device(
            device_type="socket", path="syncd", options={"address": f"127.0.0.1:{listener.port}"}
        )
        assert _wait(lambda: _gauge(metrics, "audit") == 1)
    finally:
        sources.stop()  # closes every connection Vault opened, and waits for their threads
    assert _gauge(metrics, "audit") == 0
    assert metrics.reports == [("audit", 1), ("audit", 0)]


def test_each_write_the_audit_listener_delivers_is_counted_once(
    tmp_path: Path, vault: VaultEmulator, root: hvac.Client
) -> None:
    metrics, paths = Metrics(), Paths()
    sources = NotificationSources().start(_settings(tmp_path, vault.url, AUDIT), paths, None, metrics)
    try:
        listener = sources.audit_listener
        assert listener is not None
        root.sys.enable_audit_device(
            device_type="socket", path="syncd", options={"address": f"127.0.0.1:{listener.port}"}
        )
        assert _count(metrics, "audit") == 0
        root.secrets.kv.v2.create_or_update_secret("app/api", {"api_key": "canary-notification-metrics-1"})
        assert _wait(lambda: paths.count() == 1)
        assert _wait(lambda: _count(metrics, "audit") == 1)
        root.secrets.kv.v2.create_or_update_secret("unmapped/other", {"k": "canary-notification-metrics-2"})
        assert _wait(lambda: paths.count() == 2)
        assert _wait(lambda: _count(metrics, "audit") == 2)  # unmapped paths count too: they were delivered
        assert _count(metrics, "events") is None
    finally:
        sources.stop()
    body, _ = metrics.render()
    assert b"canary-notification-metrics" not in body and b"app/api" not in body


# -- event WebSockets ------------------------------------------------------------------------------


def test_events_gauge_follows_the_websocket_through_a_drop_and_reconnect_and_counts_deliveries(
    tmp_path: Path, vault: VaultEmulator, root: hvac.Client
) -> None:
    metrics, paths = RecordingMetrics(), Paths()
    token = lambda: SecretValue(vault.root_token)  # noqa: E731
    sources = NotificationSources().start(_settings(tmp_path, vault.url, EVENTS), paths, token, metrics)
    try:
        assert _wait(lambda: _gauge(metrics, "events") == 1), "the event WebSocket did not open"
        root.secrets.kv.v2.create_or_update_secret("app/api", {"api_key": "canary-notification-metrics-3"})
        assert _wait(lambda: _count(metrics, "events") == 1)
        assert paths.items == ["secret/data/app/api"]
        assert vault.events.drop_all() == 1
        assert _wait(lambda: metrics.reports[-3:] == [("events", 1), ("events", 0), ("events", 1)]), metrics.reports
        assert _gauge(metrics, "events") == 1
    finally:
        sources.stop()
    assert _gauge(metrics, "events") == 0
    assert _gauge(metrics, "audit") is None  # not configured: not exported


# -- what is exported ------------------------------------------------------------------------------


def test_only_configured_sources_export_a_connection_gauge(tmp_path: Path) -> None:
    metrics = Metrics()
    NotificationSources().start(_settings(tmp_path, "http://127.0.0.1:1"), Paths(), None, metrics).stop()
    body, _ = metrics.render()
    assert f"{GAUGE}{{".encode() not in body  # no series: the alert has nothing to fire on
    metrics.set_notification_connections("audit", 0)
    assert _gauge(metrics, "audit") is None

    metrics.configure_notification_sources(["audit", "events"])
    metrics.set_notification_connections("events", 2)
    assert (_gauge(metrics, "audit"), _gauge(metrics, "events")) == (0, 2)
    metrics.configure_notification_sources(["events"])
    assert (_gauge(metrics, "audit"), _gauge(metrics, "events")) == (None, 2)


def test_notification_source_labels_stay_bounded() -> None:
    metrics = Metrics()
    metrics.configure_notification_sources(["audit", "secret/data/app/api"])
    metrics.count_notification("secret/data/app/api")
    body, _ = metrics.render()
    assert b"secret/data" not in body
    assert _count(metrics, "other") == 1
    assert _gauge(metrics, "audit") == 0


# -- the service wires its metrics in --------------------------------------------------------------


class _Reconciler:
    def update_settings(self, settings: Settings) -> None:
        pass

    def reconcile(
        self,
        *,
        trigger: Trigger = Trigger.INTERVAL,
        only_mappings: Collection[str] | None = None,
        deadline: float | None = None,
        dry_run: bool = False,
        corrections: Collection[DriftCorrection] = (),
    ) -> CycleReport:
        return CycleReport("c1", trigger, 1000.0, 1001.0, ())


class _State:
    def all_mapping_status(self) -> list[Any]:
        return []

    def reload(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Scheduler:
    """Runs nothing: this test is about the notification sources only."""

    def add_job(self, func: Callable[..., Any], trigger: str | None = None, **kwargs: Any) -> None:
        pass

    def reschedule_job(self, job_id: str, jobstore: str | None = None, trigger: str | None = None, **kw: Any) -> None:
        pass

    def start(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        pass


def test_service_reports_audit_connections_in_its_metrics(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "http://127.0.0.1:1", AUDIT)
    metrics = Metrics()
    service = Service(
        settings, tmp_path / "syncd.toml", ServiceParts(_Reconciler(), _State(), metrics), scheduler=_Scheduler()
    )
    service.start()
    try:
        listener = service.audit_listener
        assert listener is not None
        assert _gauge(metrics, "audit") == 0
        with socket.create_connection(("127.0.0.1", listener.port), timeout=WAIT) as vault:
            vault.sendall(AUDIT_PROBE)  # a connection counts once it sent an audit entry
            assert _wait(lambda: _gauge(metrics, "audit") == 1)
        assert _wait(lambda: _gauge(metrics, "audit") == 0)
    finally:
        service.shutdown()


# -- the alert -------------------------------------------------------------------------------------


def test_disconnection_alert_watches_the_configured_sources_gauge_for_10_minutes() -> None:
    rules = {rule["alert"]: rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    rule = rules["SyncdVaultNotificationsDisconnected"]
    assert rule["expr"].strip() == f"{GAUGE} == 0"
    assert rule["for"] == "10m"
    assert "{{ $labels.source }}" in rule["annotations"]["summary"]
