"""The Reconciler with the real VaultReader and CloudflareClient against both emulators over HTTP.

Call counts come from the emulators' own request logs (``/__devstack/requests``), so they count
what went over the wire, retries included.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hvac
import pytest
from structlog.testing import capture_logs

from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
from syncd.clients.pacer import Pacer
from syncd.clients.vault import VaultReader, build_hvac_client
from syncd.config import Settings
from syncd.devstack.stack import Devstack
from syncd.engine.reconciler import Reconciler
from syncd.engine.report import Trigger
from syncd.engine.state import StateStore
from syncd.model import SecretValue
from tests.engine.conftest import CANARY, CANARY_2, leaks
from tests.engine.fakes import keys_mapping, make_settings

SCRIPTS = ("script-a", "script-b")


class Stack:
    def __init__(self, devstack: Devstack, state_path: Path) -> None:
        self.devstack = devstack
        self.state_path = state_path
        self.vault_admin = hvac.Client(url=devstack.vault.url, token=devstack.vault.root_token)
        self.cloudflare = CloudflareClient(
            devstack.cloudflare.api_base,
            ApiTokenAuth(lambda: SecretValue(devstack.cloudflare.api_token)),
            pacer=Pacer(1200, 300.0),
            timeout=5.0,
            retry_attempts=1,
        )
        self.state = StateStore.open(state_path)

    def reconciler(self, settings: Settings) -> Reconciler:
        """A fresh reader each time, as after a process restart (its mount cache starts empty)."""
        hvac_client = build_hvac_client(
            self.devstack.vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=4
        )
        hvac_client.token = self.devstack.vault.root_token
        return Reconciler(settings, VaultReader(hvac_client, retry_attempts=1), self.cloudflare, self.state)

    def settings(self, *mappings: dict[str, Any], **sync: Any) -> Settings:
        return make_settings(mappings, account=self.devstack.cloudflare.account_id, **sync)

    def put(self, path: str, data: dict[str, str]) -> None:
        self.vault_admin.secrets.kv.v2.create_or_update_secret(path, data, mount_point="secret")

    def restart_state(self) -> None:
        self.state.close()
        self.state = StateStore.open(self.state_path)

    # --- the emulators' admin API ---
    def requests(self, which: str) -> list[tuple[str, str]]:
        url = self.devstack.vault.url if which == "vault" else self.devstack.cloudflare.url
        logged = httpx.get(f"{url}/__devstack/requests").json()["requests"]
        return [(r["method"], r["path"]) for r in logged if not r["path"].startswith("/__devstack")]

    def clear_requests(self) -> None:
        for url in (self.devstack.vault.url, self.devstack.cloudflare.url):
            httpx.delete(f"{url}/__devstack/requests").raise_for_status()

    def worker(self, script: str) -> dict[str, Any]:
        cf = self.devstack.cloudflare
        response = httpx.get(f"{cf.url}/__devstack/accounts/{cf.account_id}/workers/scripts/{script}")
        response.raise_for_status()
        return dict(response.json())

    def texts(self, script: str) -> dict[str, str]:
        return {name: body["text"] for name, body in self.worker(script)["secrets"].items()}

    def set_undeployed(self, script: str, undeployed: bool) -> None:
        cf = self.devstack.cloudflare
        url = f"{cf.url}/__devstack/accounts/{cf.account_id}/workers/scripts/{script}/undeployed"
        httpx.post(url, json={"undeployed": undeployed}).raise_for_status()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with Devstack(scripts=SCRIPTS) as devstack:
        devstack.wait_until_ready()
        s = Stack(devstack, tmp_path / "state.sqlite3")
        try:
            yield s
        finally:
            s.state.close()
            s.cloudflare.close()


def three_keys_to_two_scripts(stack: Stack) -> Settings:
    keys = {"k1": "ONE", "k2": "TWO", "k3": "THREE"}
    return stack.settings(
        keys_mapping("to-a", "app", "script-a", keys),
        keys_mapping("to-b", "app", "script-b", keys),
        keys_mapping("other", "other", "script-a", {"x": "OTHER"}),
    )


def patches(requests: list[tuple[str, str]]) -> list[str]:
    return sorted(path.rsplit("/", 2)[-2] for method, path in requests if method == "PATCH")


def test_an_unchanged_world_costs_one_metadata_read_per_secret_over_http_also_after_restart(stack: Stack) -> None:
    stack.put("app", {"k1": CANARY, "k2": "two", "k3": "three"})
    stack.put("other", {"x": "x"})
    settings = three_keys_to_two_scripts(stack)
    reconciler = stack.reconciler(settings)
    assert reconciler.reconcile(trigger=Trigger.STARTUP).ok
    assert stack.texts("script-a") == {"ONE": CANARY, "TWO": "two", "THREE": "three", "OTHER": "x"}
    assert patches(stack.requests("cloudflare")) == ["script-a", "script-b"]

    stack.clear_requests()
    assert reconciler.reconcile().ok
    assert sorted(stack.requests("vault")) == [("GET", "/v1/secret/metadata/app"), ("GET", "/v1/secret/metadata/other")]
    assert stack.requests("cloudflare") == []

    stack.restart_state()
    stack.clear_requests()
    assert stack.reconciler(settings).reconcile(trigger=Trigger.STARTUP).ok
    assert sorted(stack.requests("vault")) == [
        ("GET", "/v1/secret/metadata/app"),
        ("GET", "/v1/secret/metadata/other"),
        ("GET", "/v1/sys/internal/ui/mounts/secret"),  # a new process learns the mount's KV version once
    ]
    assert stack.requests("cloudflare") == []


def test_a_rotation_mapped_to_two_scripts_is_two_bulk_calls_and_two_worker_versions(stack: Stack) -> None:
    stack.put("app", {"k1": "one", "k2": "two", "k3": "three"})
    stack.put("other", {"x": "x"})
    reconciler = stack.reconciler(three_keys_to_two_scripts(stack))
    reconciler.reconcile()
    versions = {script: stack.worker(script)["versions"] for script in SCRIPTS}
    stack.put("app", {"k1": CANARY_2, "k2": "two-2", "k3": "three-2"})
    stack.clear_requests()
    report = reconciler.reconcile(trigger=Trigger.NOTIFICATION)
    assert report.ok
    assert sorted(stack.requests("cloudflare")) == [  # written concurrently: in any order
        ("PATCH", f"/client/v4/accounts/{stack.devstack.cloudflare.account_id}/workers/scripts/script-a/secrets-bulk"),
        ("PATCH", f"/client/v4/accounts/{stack.devstack.cloudflare.account_id}/workers/scripts/script-b/secrets-bulk"),
    ]
    assert {s: stack.worker(s)["versions"] - versions[s] for s in SCRIPTS} == {"script-a": 1, "script-b": 1}
    assert stack.texts("script-b") == {"ONE": CANARY_2, "TWO": "two-2", "THREE": "three-2"}


def test_an_undeployed_script_fails_its_mapping_only_and_is_written_once_deployable(stack: Stack) -> None:
    stack.put("app", {"k1": "one", "k2": "two", "k3": "three"})
    stack.put("other", {"x": "x"})
    settings = three_keys_to_two_scripts(stack)
    stack.set_undeployed("script-b", True)
    reconciler = stack.reconciler(settings)
    report = reconciler.reconcile()
    failed = {r.mapping: r.error_code for r in report.results if r.failed}
    assert list(failed) == ["to-b"]
    assert str(failed["to-b"]).startswith("CloudflareNotDeployed(")
    assert set(stack.texts("script-a")) == {"ONE", "TWO", "THREE", "OTHER"}
    assert stack.texts("script-b") == {}
    status = stack.state.mapping_status("to-b")
    assert status is not None
    assert not status.in_sync

    stack.set_undeployed("script-b", False)
    stack.clear_requests()
    assert reconciler.reconcile().ok
    assert patches(stack.requests("cloudflare")) == ["script-b"]
    assert set(stack.texts("script-b")) == {"ONE", "TWO", "THREE"}


def test_missing_path_fails_only_that_mapping_and_values_stay_out_of_logs_and_state(stack: Stack) -> None:
    stack.put("app", {"k1": CANARY, "k2": CANARY_2, "k3": "three"})
    settings = stack.settings(
        keys_mapping("fine", "app", "script-a", {"k1": "ONE", "k2": "TWO"}),
        keys_mapping("missing", "nowhere", "script-b", {"k": "NOPE"}),
    )
    with capture_logs() as logs:
        report = stack.reconciler(settings).reconcile()
    assert {r.mapping: r.error_code for r in report.results} == {"fine": None, "missing": "VaultSecretNotFound"}
    assert stack.texts("script-a") == {"ONE": CANARY, "TWO": CANARY_2}
    assert leaks(repr(logs)) == []
    assert leaks(repr(report)) == []
    stack.state.close()
    stored = b"".join(p.read_bytes() for p in stack.state_path.parent.iterdir() if p.is_file())
    stack.state = StateStore.open(stack.state_path)
    assert leaks(stored) == []
