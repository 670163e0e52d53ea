"""Finding 4 of issue 21: a proxy error page at the Vault address that echoes the request's headers
must not put the Vault token into ``syncd once`` output, ``syncd status --json``, ``/status`` or the
state file. What is kept of an upstream's error is its status and, from a JSON envelope only, its
own message, scrubbed (``syncd.redaction``)."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.app.service.daemon import Service
from syncd.app.service.wiring import build_service
from syncd.config import load_config
from tests.app.conftest import run_cli
from tests.app.service_conftest_helpers import API_PATH, Stack, config_text, leaked_any, running_stack
from tests.hostile import EchoingProxy
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

TRIGGER_TOKEN = "trigger-token-for-the-echo-test-0123456789abcdef"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with running_stack(monkeypatch) as running:
        yield running


@pytest.fixture
def proxy(stack: Stack) -> Iterator[EchoingProxy]:
    echoing = EchoingProxy(stack.vault.url, lambda method, path: f"/metadata/{API_PATH}" in path).start()
    yield echoing
    echoing.stop()


def _config(tmp_path: Path, stack: Stack, proxy: EchoingProxy) -> Path:
    path = tmp_path / "syncd.toml"
    text = config_text(stack, tmp_path / "state.sqlite3").replace(
        f'address = "{stack.vault.url}"', f'address = "{proxy.url}"'
    )
    path.write_text(text)
    return path


def _state_bytes(tmp_path: Path) -> bytes:
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        rows = db.execute("SELECT mapping, last_error_code, last_error FROM mapping_status").fetchall()
    return json.dumps(rows).encode()


def test_an_echoed_token_reaches_no_output_no_state_and_no_status(
    stack: Stack,
    proxy: EchoingProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = stack.vault.root_token
    config = _config(tmp_path, stack, proxy)
    code, out, err = run_cli(capsys, "once", "--config", str(config))
    assert code == 1  # app-api failed on the proxy's page, search-v1 went through
    assert any(token in r.headers.get("X-Vault-Token", "") for r in proxy.received), "the echo was never served"
    assert "HTTP 502" in out and "app-api" in out
    assert leaked_any([token], out, err) == []

    code, out, err = run_cli(capsys, "status", "--json", "--config", str(config))
    rows = {row["mapping"]: row for row in json.loads(out)["mappings"]}
    assert rows["app-api"]["last_error_code"] == "VaultUnavailable"
    assert "502" in rows["app-api"]["last_error"]
    assert leaked_any([token], out, err) == []
    assert "X-Vault-Token" not in rows["app-api"]["last_error"]  # no header-like content kept either
    state = (tmp_path / "state.sqlite3").read_bytes().decode("latin-1")
    assert leaked_any([token], _state_bytes(tmp_path).decode(), state) == []

    # The running service: /status (with the trigger token, so the full document) says the same.
    monkeypatch.setenv("SYNCD_TEST_TRIGGER", TRIGGER_TOKEN)
    text = config.read_text().replace(
        "[server]\nenabled = false",
        '[server]\nenabled = true\nbind = "127.0.0.1"\nport = 0\ntrigger_token = { env = "SYNCD_TEST_TRIGGER" }',
    )
    config.write_text(text)
    service = build_service(load_config(config), config)
    assert isinstance(service, Service)
    service.start()
    try:
        assert wait_until(lambda: service.status()["last_cycle"] is not None, 30.0)
        request = urllib.request.Request(
            f"{service.server.url}/status",  # type: ignore[union-attr]
            headers={"Authorization": f"Bearer {TRIGGER_TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read().decode()
        assert '"app-api"' in body and "502" in body
        assert leaked_any([token], body) == [] and "X-Vault-Token" not in body
    finally:
        service.shutdown()
