"""Leading edge and backstop mode end to end: the real service, both emulators over HTTP, Vault's
socket audit device connected to syncd's listener.

- a write that arrives while its cycle runs (after that cycle read the secret) is reconciled by
  exactly one follow-up cycle, never lost;
- a burst of 1,000 writes that arrives while the first cycle runs costs two cycles, and the
  follow-up one Cloudflare call per affected script;
- a write made while the source is down arrives within one interval_seconds, by the interval sweep.

The Cloudflare transport is the real one wrapped by a gate: it holds the first secrets-bulk write of
the cycle under test until the test says so, which is how "while the cycle runs" is made certain
without sleeping. Waits are conditions with deadlines; no latency is asserted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import hvac
import pytest

from syncd.app.service.daemon import Service
from syncd.app.service.wiring import build_service
from syncd.config import load_config
from tests.app.service_conftest_helpers import (
    CANARY_API_KEY,
    CANARY_ROTATED,
    CANARY_WEBHOOK,
    OTHER_SCRIPT,
    SCRIPT,
    Stack,
    config_text,
    holds_api_key,
    metrics_text,
    running_stack,
    swept_after_backstop,
)
from tests.waiting import wait_until

WAIT = 30.0
WITH_AUDIT = '[server]\nenabled = true\nbind = "127.0.0.1"\nport = 0\n\n[notifications]\naudit_listen = "127.0.0.1:0"'
FOLLOW_UP_VALUE = "followup-value-5b1c"
BURST_SECRETS = 10
BURST_WRITES = 1000


def _wait(condition: Callable[[], bool]) -> bool:
    return wait_until(condition, WAIT)


class GatedTransport(httpx.BaseTransport):
    """The real transport; once armed, the next secrets-bulk write runs ``on_hold`` before it goes."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self._on_hold: Callable[[], None] | None = None

    def arm(self, on_hold: Callable[[], None]) -> None:
        with self._lock:
            self._on_hold = on_hold

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        hold = None
        if request.method == "PATCH" and request.url.path.endswith("/secrets-bulk"):
            with self._lock:
                hold, self._on_hold = self._on_hold, None
        if hold is not None:
            hold()
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def _burst_mappings() -> str:
    text = ""
    for n in range(BURST_SECRETS):
        script = SCRIPT if n % 2 == 0 else OTHER_SCRIPT
        text += f"""
[[mapping]]
name = "burst-{n}"
vault = {{ mount = "secret", path = "burst/b{n}", kv_version = 2 }}
target = {{ script = "{script}" }}
secret_text = {{ keys = {{ v = "BURST_{n}" }} }}
"""
    return text


class Running:
    def __init__(self, stack: Stack, service: Service, transport: GatedTransport) -> None:
        self.stack, self.service, self.transport = stack, service, transport
        server = service.server
        assert server is not None
        self.url: str = server.url  # type: ignore[attr-defined]

    @property
    def audit_writes(self) -> int:
        listener = self.service.audit_listener
        assert listener is not None
        return listener.writes

    def notification_cycles(self) -> float:
        for line in metrics_text(self.url).splitlines():
            if line.startswith('syncd_cycles_total{outcome="ok",trigger="notification"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def bulk_writes(self) -> list[str]:
        return [r["path"] for r in self.stack.cloudflare_calls() if r["method"] == "PATCH"]


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    with running_stack(monkeypatch) as stack:
        for n in range(BURST_SECRETS):
            stack.root.secrets.kv.v2.create_or_update_secret(path=f"burst/b{n}", secret={"v": "0"})
        text = config_text(stack, tmp_path / "state.sqlite3", extra_mapping=_burst_mappings()).replace(
            "[server]\nenabled = false",
            WITH_AUDIT,
        )
        path = tmp_path / "syncd.toml"
        path.write_text(text)
        transport = GatedTransport()
        service = build_service(load_config(path), path, cloudflare_transport=transport)
        service.start()
        try:
            listener = service.audit_listener
            assert listener is not None
            assert _wait(lambda: holds_api_key(stack, CANARY_API_KEY)), "the startup cycle did not push"
            stack.root.sys.enable_audit_device(
                device_type="socket",
                path="syncd",
                options={"address": f"127.0.0.1:{listener.port}", "socket_type": "tcp"},
            )
            assert _wait(swept_after_backstop(service)), "the audit device did not connect"
            stack.clear_logs()
            yield Running(stack, service, transport)
        finally:
            service.shutdown()
            transport.close()


def test_a_write_noticed_after_its_cycle_read_the_secret_gets_exactly_one_follow_up(running: Running) -> None:
    stack = running.stack
    noticed = running.audit_writes

    def write_again_while_the_cycle_runs() -> None:
        # The cycle has read version 2 and is about to write it: version 3 lands now.
        stack.write_api(FOLLOW_UP_VALUE, CANARY_WEBHOOK)
        assert _wait(lambda: running.audit_writes >= noticed + 2), "the second write was not noticed"

    running.transport.arm(write_again_while_the_cycle_runs)
    stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)

    assert _wait(lambda: holds_api_key(stack, FOLLOW_UP_VALUE)), "the follow-up did not push the newer version"
    assert _wait(lambda: running.notification_cycles() == 2.0)
    bulk = f"/client/v4/accounts/{stack.cf.account_id}/workers/scripts/{SCRIPT}/secrets-bulk"
    assert running.bulk_writes().count(bulk) == 2


def test_a_burst_of_1000_writes_costs_two_cycles_and_one_call_per_script_in_the_follow_up(running: Running) -> None:
    stack = running.stack
    noticed = running.audit_writes
    writer = hvac.Client(url=stack.vault.url, token=stack.vault.root_token, timeout=10)
    last = {n: "" for n in range(BURST_SECRETS)}

    def burst() -> None:
        for i in range(1, BURST_WRITES):
            n = i % BURST_SECRETS
            last[n] = f"burst-{i}"
            writer.secrets.kv.v2.create_or_update_secret(path=f"burst/b{n}", secret={"v": last[n]})

    def hold_until_the_burst_was_noticed() -> None:
        burst()
        assert _wait(lambda: running.audit_writes >= noticed + BURST_WRITES), "the burst was not noticed"

    running.transport.arm(hold_until_the_burst_was_noticed)
    last[0] = "burst-0"
    writer.secrets.kv.v2.create_or_update_secret(path="burst/b0", secret={"v": "burst-0"})  # the leading write

    def all_arrived() -> bool:
        for n in range(BURST_SECRETS):
            body = stack.cf.secrets_of(SCRIPT if n % 2 == 0 else OTHER_SCRIPT).get(f"BURST_{n}")
            if body is None or body.get("text") != last[n]:
                return False
        return True

    assert _wait(all_arrived), "the burst's last versions did not all arrive"
    assert _wait(lambda: running.notification_cycles() == 2.0)
    base = f"/client/v4/accounts/{stack.cf.account_id}/workers/scripts"
    writes = running.bulk_writes()
    # The leading cycle wrote the first version to its script; the follow-up one call per script.
    assert writes.count(f"{base}/{SCRIPT}/secrets-bulk") == 2
    assert writes.count(f"{base}/{OTHER_SCRIPT}/secrets-bulk") == 1


def test_a_write_made_while_the_source_is_down_arrives_by_the_interval_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_stack(monkeypatch) as stack:
        text = (
            config_text(stack, tmp_path / "state.sqlite3")
            .replace("interval_seconds = 60", "interval_seconds = 1")
            .replace("[server]\nenabled = false", WITH_AUDIT)
        )
        path = tmp_path / "syncd.toml"
        path.write_text(text)
        service = build_service(load_config(path), path)  # the real APScheduler: ticks every second
        service.start()
        try:
            listener = service.audit_listener
            assert listener is not None
            stack.root.sys.enable_audit_device(
                device_type="socket",
                path="syncd",
                options={"address": f"127.0.0.1:{listener.port}", "socket_type": "tcp"},
            )
            assert _wait(swept_after_backstop(service)), "the audit device did not connect"
            stack.root.sys.disable_audit_device("syncd")  # Vault closes the connection
            assert _wait(lambda: service.sync_mode()["mode"] == "interval")
            assert service.sync_mode()["reason"] == "audit: no connection"
            url = service.server.url  # type: ignore[union-attr]
            assert _wait(lambda: 'syncd_sync_mode{mode="interval"} 1.0' in metrics_text(url))
            before = metrics_text(url)

            stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)  # nobody tells syncd about this one

            assert _wait(lambda: holds_api_key(stack, CANARY_ROTATED)), "the interval sweep did not pick it up"
            notified = [line for line in before.splitlines() if 'trigger="notification"' in line]
            after = metrics_text(url)
            assert all(line in after for line in notified)  # no notification cycle ran meanwhile
        finally:
            service.shutdown()
