"""A Vault write reaches the Workers at once through the socket audit device, long before the next poll."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import hvac
import pytest

from syncd.app.service.daemon import Service
from syncd.app.service.wiring import build_service
from syncd.config import load_config
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




def test_vault_write_is_pushed_at_once_and_counted_as_notification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_stack(monkeypatch) as stack:
        text = config_text(stack, tmp_path / "state.sqlite3").replace(
            "[server]\nenabled = false",
            '[server]\nenabled = true\nbind = "127.0.0.1"\nport = 0\n\n[notifications]\naudit_listen = "127.0.0.1:0"',
        )
        path = tmp_path / "syncd.toml"
        path.write_text(text)
        service = build_service(load_config(path), path)  # real wiring, real APScheduler, 60 s interval
        assert isinstance(service, Service)
        service.start()
        try:
            assert _wait(lambda: holds_api_key(stack, CANARY_API_KEY)), "the startup cycle did not push"
            listener = service.audit_listener
            assert listener is not None
            root = hvac.Client(url=stack.vault.url, token=stack.vault.root_token)
            root.sys.enable_audit_device(
                device_type="socket",
                path="syncd",
                options={"address": f"127.0.0.1:{listener.port}", "socket_type": "tcp"},
            )
            # The connection switches to backstop mode, which sweeps everything once: let it end,
            # so the write below starts a notification cycle of its own.
            assert _wait(swept_after_backstop(service))
            written_at = time.monotonic()
            stack.write_api(CANARY_ROTATED, CANARY_WEBHOOK)
            assert _wait(lambda: holds_api_key(stack, CANARY_ROTATED)), "the notification did not trigger a push"
            assert time.monotonic() - written_at < 30  # far below the 60 s poll interval
            server = service.server
            assert server is not None
            url = f"{server.url}/metrics"  # type: ignore[attr-defined]

            def counted() -> bool:  # the Worker holds the value before the cycle that wrote it ends
                with urllib.request.urlopen(url, timeout=5) as response:
                    return 'syncd_cycles_total{outcome="ok",trigger="notification"}' in response.read().decode()

            assert _wait(counted), "the notification cycle was not counted"
        finally:
            service.shutdown()
