"""VaultEventsSubscriber against the Vault emulator: writes become on_write(path) at once."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import hvac
import pytest
from pydantic import ValidationError

from syncd.app.notify.audit import paths_to_mappings
from syncd.app.notify.vault_events import VaultEventsSubscriber, event_path, subscribe_url
from syncd.app.service.daemon import Service
from syncd.app.service.wiring import build_service
from syncd.config import NotificationSettings, load_config
from syncd.devstack.vault import VaultEmulator
from syncd.model import SecretValue
from tests.app.conftest import LogCapture
from tests.app.service_conftest_helpers import (
    CANARY_API_KEY,
    CANARY_ROTATED,
    CANARY_WEBHOOK,
    config_text,
    holds_api_key,
    running_stack,
    swept_after_backstop,
)
from tests.waiting import wait_until

WAIT = 30.0  # generous: CI runs on a loaded 2-core machine


def _wait(condition: Callable[[], bool]) -> bool:
    return wait_until(condition, WAIT)


CANARY = "canary-subscriber-value-9d2e"
_tick = threading.Event()  # never set: wait() parks a thread


class Paths:
    """What on_write received, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[str] = []

    def __call__(self, path: str) -> None:
        with self._lock:
            self.items.append(path)

    def has(self, path: str) -> bool:
        with self._lock:
            return path in self.items


@pytest.fixture
def vault() -> Iterator[VaultEmulator]:
    with VaultEmulator() as emulator:
        yield emulator


@pytest.fixture
def root(vault: VaultEmulator) -> hvac.Client:
    return hvac.Client(url=vault.url, token=vault.root_token)


def _subscriber(vault: VaultEmulator, paths: Paths, **kwargs: object) -> VaultEventsSubscriber:
    options: dict[str, object] = {"debounce_seconds": 0.0, "backoff_initial": 0.01, "backoff_max": 0.05}
    options.update(kwargs)
    return VaultEventsSubscriber(vault.url, lambda: SecretValue(vault.root_token), paths, **options)  # type: ignore[arg-type]


def test_kv2_and_kv1_writes_reach_on_write_with_the_audit_path_form(vault: VaultEmulator, root: hvac.Client) -> None:
    paths = Paths()
    with _subscriber(vault, paths) as subscriber:
        assert _wait(lambda: subscriber.connected == 2), "the WebSockets did not open"
        root.secrets.kv.v2.create_or_update_secret("app/api", {"api_key": CANARY})
        root.secrets.kv.v1.create_or_update_secret("search", {"token": CANARY}, mount_point="kv")
        root.secrets.kv.v2.delete_secret_versions("app/api", [1])
        root.secrets.kv.v2.undelete_secret_versions("app/api", [1])
        for expected in ("secret/data/app/api", "kv/search", "secret/delete/app/api", "secret/undelete/app/api"):
            assert _wait(lambda expected=expected: paths.has(expected)), expected  # type: ignore[misc]


def test_repeated_writes_of_one_path_coalesce(vault: VaultEmulator, root: hvac.Client) -> None:
    paths = Paths()
    with _subscriber(vault, paths, debounce_seconds=0.3, event_types=["kv-v2/*"]) as subscriber:
        assert _wait(lambda: subscriber.connected == 1)
        for n in range(5):
            root.secrets.kv.v2.create_or_update_secret("burst", {"n": str(n)})
        assert _wait(lambda: paths.has("secret/data/burst"))
        assert _wait(lambda: subscriber.writes == 5)
    assert paths.items.count("secret/data/burst") < 5


def test_reconnects_after_the_server_drops_the_connection(vault: VaultEmulator, root: hvac.Client) -> None:
    paths = Paths()
    with _subscriber(vault, paths, event_types=["kv-v2/*"]) as subscriber:
        assert _wait(lambda: subscriber.connected == 1)
        assert vault.events.drop_all() == 1
        assert _wait(lambda: subscriber.connects >= 2), "no reconnect after the drop"
        assert _wait(lambda: vault.events.subscribers == 1)
        root.secrets.kv.v2.create_or_update_secret("after-drop", {"a": CANARY})
        assert _wait(lambda: paths.has("secret/data/after-drop"))


def test_reconnects_after_a_failed_handshake(vault: VaultEmulator, root: hvac.Client) -> None:
    fault = {"method": "GET", "path": "/v1/sys/events/subscribe/*", "status": 503, "count": 2}
    root.adapter.post("/__devstack/faults", json=fault)  # not a /v1 path: hvac keeps it as is
    paths = Paths()
    with _subscriber(vault, paths, event_types=["kv-v2/*"]) as subscriber:
        assert _wait(lambda: subscriber.connected == 1)
        attempts = [r for r in vault.state.requests if r["path"].startswith("/v1/sys/events/subscribe/")]
        assert [r["status"] for r in attempts] == [503, 503, 101]


def test_community_edition_logs_once_and_stops_trying(json_logs: LogCapture) -> None:
    paths = Paths()
    with VaultEmulator(enterprise_events=False) as vault:
        subscriber = _subscriber(vault, paths).start()
        try:
            assert _wait(lambda: not subscriber.running), "the subscriber kept trying"
            assert subscriber.unsupported
            attempts = [r for r in vault.state.requests if "events/subscribe" in r["path"]]
            assert 1 <= len(attempts) <= 2 and {r["status"] for r in attempts} == {404}
        finally:
            subscriber.stop()
    warnings = [line for line in json_logs.lines() if line.get("level") == "warning"]
    assert len(warnings) == 1 and "Community Edition" in warnings[0]["event"]


def test_forbidden_subscription_backs_off_at_the_slowest_rate(vault: VaultEmulator, root: hvac.Client) -> None:
    root.sys.create_or_update_policy("nothing", 'path "secret/data/*" { capabilities = ["read"] }')
    token = root.auth.token.create(policies=["nothing"])["auth"]["client_token"]
    delays: list[float] = []
    stop = threading.Event()

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) >= 3:
            stop.set()
            _tick.wait(WAIT)  # park the thread until stop() below ends the loop

    subscriber = VaultEventsSubscriber(
        vault.url,
        lambda: token,
        Paths(),
        event_types=["kv-v2/*"],
        backoff_initial=1.0,
        backoff_max=8.0,
        sleep=sleep,
        rng=lambda: 1.0,
    ).start()
    try:
        assert stop.wait(WAIT)
    finally:
        subscriber.stop(timeout=0.1)
    assert delays[:3] == [8.0, 8.0, 8.0]


def test_backoff_grows_exponentially_with_jitter_and_is_capped(vault: VaultEmulator) -> None:
    delays: list[float] = []
    done = threading.Event()

    def refuse() -> str:
        raise ConnectionRefusedError("no token yet")

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) >= 6:
            done.set()
            _tick.wait(WAIT)

    subscriber = VaultEventsSubscriber(
        vault.url,
        refuse,
        Paths(),
        event_types=["kv-v2/*"],
        backoff_initial=1.0,
        backoff_max=8.0,
        sleep=sleep,
        rng=lambda: 0.0,
    ).start()
    try:
        assert done.wait(WAIT)
    finally:
        subscriber.stop(timeout=0.1)
    assert delays[:6] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]  # syncd.retrying's rule, no jitter drawn


def test_the_token_never_reaches_the_logs(vault: VaultEmulator, root: hvac.Client, json_logs: LogCapture) -> None:
    paths = Paths()
    with _subscriber(vault, paths) as subscriber:
        assert _wait(lambda: subscriber.connected == 2)
        root.secrets.kv.v2.create_or_update_secret("app", {"v": CANARY})
        assert _wait(lambda: paths.has("secret/data/app"))
        vault.events.drop_all()
        assert _wait(lambda: subscriber.connects >= 4)
    assert json_logs.events("vault event subscription open"), "nothing was logged: the check would be empty"
    assert vault.root_token not in json_logs.text
    assert CANARY not in json_logs.text


def test_event_path_reads_the_metadata_path_and_prefixes_the_namespace() -> None:
    def message(metadata: dict[str, str], namespace: str | None = None) -> str:
        data: dict[str, object] = {"event": {"id": "1", "metadata": metadata}, "event_type": "kv-v2/data-write"}
        if namespace is not None:
            data["namespace"] = namespace
        return json.dumps({"specversion": "1.0", "data": data})

    assert event_path(message({"path": "secret/data/a", "modified": "true"})) == "secret/data/a"
    assert event_path(message({"path": "secret/data/a"}, namespace="team/")) == "team/secret/data/a"
    assert event_path(message({"path": "secret/data/a", "modified": "false"})) is None
    assert event_path(message({"data_path": "secret/data/a"})) is None
    assert event_path("not json") is None
    assert event_path("[1, 2]") is None


def test_subscribe_url_maps_the_scheme_and_encodes_the_filter() -> None:
    assert subscribe_url("http://vault:8200/", "kv-v2/*") == "ws://vault:8200/v1/sys/events/subscribe/kv-v2/*?json=true"
    url = subscribe_url("https://vault.example", "kv*", 'data_path == "secret/data/a b"')
    assert url.startswith("wss://vault.example/v1/sys/events/subscribe/kv*?json=true&filter=")
    assert "a+b" in url and " " not in url


def test_subscriber_paths_map_to_mappings_unchanged(tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text(
        """
[vault]
address = "http://127.0.0.1:8200"
[vault.auth]
method = "token"
[cloudflare]
account_id = "0123456789abcdef0123456789abcdef"
[cloudflare.auth]
api_token = { env = "CF_TOKEN" }
[[mapping]]
name = "api"
vault = { mount = "secret", path = "app/api" }
target = { script = "app-worker" }
secret_text = { keys = { api_key = "API_KEY" } }
"""
    )
    settings = load_config(config)
    for path in ("secret/data/app/api", "secret/undelete/app/api", "secret/metadata/app/api"):
        assert paths_to_mappings(settings, path) == {"api"}
    assert paths_to_mappings(settings, "secret/data/other") == set()


def test_service_with_vault_events_pushes_a_write_at_once_as_a_notification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_stack(monkeypatch) as stack:
        text = config_text(stack, tmp_path / "state.sqlite3").replace(
            "[server]\nenabled = false",
            '[server]\nenabled = true\nbind = "127.0.0.1"\nport = 0\n\n[notifications]\nvault_events = true',
        )
        path = tmp_path / "syncd.toml"
        path.write_text(text)
        service = build_service(load_config(path), path)  # real wiring, real APScheduler, 60 s interval
        service.start()
        try:
            assert _wait(lambda: holds_api_key(stack, CANARY_API_KEY)), "the startup cycle did not push"
            subscriber = service.vault_events
            assert subscriber is not None
            assert _wait(lambda: subscriber.connected == 2), "the event WebSockets did not open"
            assert isinstance(service, Service)
            assert _wait(swept_after_backstop(service)), "both WebSockets open: backstop mode, one sweep"
            written_at = time.monotonic()
            stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)  # no audit device: only the event can tell
            assert _wait(lambda: holds_api_key(stack, CANARY_ROTATED)), "the event did not trigger a push"
            assert time.monotonic() - written_at < 30  # far below the 60 s poll interval
            server = service.server
            assert server is not None

            def notification_cycle_counted() -> bool:
                # The Worker holds the value before the cycle that wrote it has finished and been counted.
                with urllib.request.urlopen(f"{server.url}/metrics", timeout=WAIT) as response:  # type: ignore[attr-defined]
                    metrics: str = response.read().decode()
                return 'syncd_cycles_total{outcome="ok",trigger="notification"}' in metrics

            assert _wait(notification_cycle_counted), "no successful notification cycle in /metrics"
        finally:
            service.shutdown()
        assert not subscriber.running and subscriber.connected == 0


def test_notification_settings_default_off_and_reject_odd_event_types() -> None:
    defaults = NotificationSettings()
    assert defaults.vault_events is False and defaults.vault_event_types == ["kv-v2/*", "kv-v1/*"]
    assert NotificationSettings(vault_events=True, vault_event_types=["kv*"]).vault_event_types == ["kv*"]
    for bad in ([], ["kv v2/*"], ["kv-v2/*?json=false"]):
        with pytest.raises(ValidationError):
            NotificationSettings(vault_event_types=bad)
