"""The Secrets Store destination against both emulators over real HTTP: the real VaultReader,
CloudflareClient and SecretsStoreClient, the adapter, the store drift check and its correction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hvac
import pytest
from structlog.testing import capture_logs

from syncd.app.service.store_drift import StoreDriftCheck
from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
from syncd.clients.pacer import Pacer
from syncd.clients.secrets_store import SecretsStoreClient
from syncd.clients.vault import VaultReader, build_hvac_client
from syncd.config import Settings
from syncd.devstack.stack import Devstack
from syncd.engine.destinations_store import SecretsStoreAdapter
from syncd.engine.drift import DriftCorrection
from syncd.engine.reconciler import Reconciler
from syncd.engine.report import Trigger
from syncd.engine.state import StateStore
from syncd.model import DestinationKind, SecretValue, Target
from tests.engine.conftest import CANARY, CANARY_2, leaks
from tests.engine.fakes import keys_mapping, make_settings

pytestmark = pytest.mark.integration

STORE_NAME = "default_secrets_store"


class Stack:
    def __init__(self, devstack: Devstack, state_path: Path) -> None:
        self.devstack = devstack
        cf = devstack.cloudflare
        self.account = cf.account_id
        self.vault_admin = hvac.Client(url=devstack.vault.url, token=devstack.vault.root_token)
        self.cloudflare = CloudflareClient(
            cf.api_base, ApiTokenAuth(lambda: SecretValue(cf.api_token)), pacer=Pacer(1200, 300.0), timeout=5.0
        )
        self.adapter = SecretsStoreAdapter(SecretsStoreClient(self.cloudflare))
        self.state_path = state_path
        self.state = StateStore.open(state_path)
        created = httpx.post(f"{cf.url}/__devstack/accounts/{cf.account_id}/secrets_store/stores", json={})
        created.raise_for_status()
        self.store_id = str(created.json()["id"])
        self.target = Target(self.account, STORE_NAME, kind=DestinationKind.SECRETS_STORE)

    def reconciler(self, settings: Settings) -> Reconciler:
        hvac_client = build_hvac_client(
            self.devstack.vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=4
        )
        hvac_client.token = self.devstack.vault.root_token
        return Reconciler(
            settings,
            VaultReader(hvac_client, retry_attempts=1),
            self.cloudflare,
            self.state,
            destinations={DestinationKind.SECRETS_STORE: self.adapter},
        )

    def put(self, path: str, data: dict[str, str]) -> None:
        self.vault_admin.secrets.kv.v2.create_or_update_secret(path, data, mount_point="secret")

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        cf = self.devstack.cloudflare
        url = f"{cf.url}/__devstack/accounts/{self.account}/secrets_store/stores/{self.store_id}{path}"
        response = httpx.request(method, url, **kwargs)
        response.raise_for_status()
        return response.json()

    def secrets(self) -> dict[str, dict[str, Any]]:
        return {s["name"]: s for s in self.admin("GET", "/secrets")["secrets"]}

    def values(self) -> dict[str, str]:
        return {name: s["value"] for name, s in self.secrets().items()}

    def requests(self) -> list[tuple[str, str]]:
        logged = httpx.get(f"{self.devstack.cloudflare.url}/__devstack/requests").json()["requests"]
        return [(r["method"], r["path"]) for r in logged if not r["path"].startswith("/__devstack")]

    def clear_requests(self) -> None:
        httpx.delete(f"{self.devstack.cloudflare.url}/__devstack/requests").raise_for_status()

    def set_quota(self, quota: int) -> None:
        cf = self.devstack.cloudflare
        httpx.post(f"{cf.url}/__devstack/config", json={"secrets_store": {"secret_quota": quota}}).raise_for_status()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with Devstack(scripts=("api",)) as devstack:
        devstack.wait_until_ready()
        s = Stack(devstack, tmp_path / "state.sqlite3")
        try:
            yield s
        finally:
            s.state.close()
            s.cloudflare.close()


def store_mapping(name: str, path: str, keys: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "vault": {"mount": "secret", "path": path},
        "target": {"secrets_store": STORE_NAME},
        "secret_text": {"keys": keys},
    }


def test_a_full_cycle_over_http_and_a_rotation_is_one_patch(stack: Stack) -> None:
    stack.put("db", {"password": CANARY, "user": "app"})
    settings = make_settings(
        [store_mapping("db", "db", {"password": "db-password", "user": "DB_USER"})], account=stack.account
    )
    reconciler = stack.reconciler(settings)
    with capture_logs() as logs:
        first = reconciler.reconcile(trigger=Trigger.STARTUP)
    assert first.ok, [r.error for r in first.results]
    assert stack.values() == {"db-password": CANARY, "DB_USER": "app"}
    posts = [p for m, p in stack.requests() if m == "POST"]
    assert len(posts) == 1 and posts[0].endswith(f"/stores/{stack.store_id}/secrets")
    assert stack.secrets()["db-password"]["comment"] == "managed by syncd (mapping db)"

    stack.clear_requests()
    assert reconciler.reconcile().ok
    assert stack.requests() == []  # an unchanged world: no Cloudflare call at all

    stack.put("db", {"password": CANARY_2, "user": "app"})
    stack.clear_requests()
    with capture_logs() as more:
        assert reconciler.reconcile().ok
    assert [m for m, p in stack.requests() if "secrets_store" in p] == ["PATCH"]
    assert stack.values()["db-password"] == CANARY_2
    # The values went to the store and nowhere else: not logs, not the state, not the reports.
    assert leaks(repr(logs) + repr(more) + repr(first)) == []
    stack.state.close()
    stack.state = StateStore.open(stack.state_path)
    assert leaks(stack.state_path.read_bytes().decode("latin-1")) == []


def test_a_hand_edit_is_drift_and_correct_puts_vaults_value_back(stack: Stack) -> None:
    stack.put("db", {"password": CANARY})
    settings = make_settings([store_mapping("db", "db", {"password": "db-password"})], account=stack.account)
    reconciler = stack.reconciler(settings)
    assert reconciler.reconcile().ok
    check = StoreDriftCheck(stack.adapter)
    owned = list(stack.state.bindings())
    calm, requests = check.check(stack.target, owned)
    assert not calm.drifted and requests == 1

    secret_id = stack.secrets()["db-password"]["id"]
    stack.admin("POST", f"/secrets/{secret_id}/hand-edit", json={"value": "typed-in-the-dashboard"})
    found, _ = check.check(stack.target, owned)
    assert found.drifted and found.changed == {"db-password"}
    again, _ = check.check(stack.target, owned)
    assert not again.drifted  # reported once

    correction = DriftCorrection(stack.target, found.changed, "changed by someone else", 0.0)
    report = reconciler.reconcile(trigger=Trigger.DRIFT, corrections=[correction])
    assert report.ok and [p.written for p in report.pushes] == [("db-password",)]
    assert stack.values()["db-password"] == CANARY
    assert not check.check(stack.target, owned)[0].drifted  # syncd's own correction is not drift


def test_a_quota_overflow_fails_only_the_mappings_that_create(stack: Stack) -> None:
    stack.put("db", {"password": "one"})
    stack.put("api", {"key": "k1", "other": "k2"})
    first = make_settings([store_mapping("db", "db", {"password": "db-password"})], account=stack.account)
    reconciler = stack.reconciler(first)
    assert reconciler.reconcile().ok
    stack.set_quota(2)
    stack.put("db", {"password": CANARY})
    reconciler.update_settings(
        make_settings(
            [
                store_mapping("db", "db", {"password": "db-password"}),
                store_mapping("api", "api", {"key": "api-key", "other": "other-key"}),
                keys_mapping("script", "api", "api", {"key": "API_KEY"}),
            ],
            account=stack.account,
        )
    )
    report = reconciler.reconcile()
    by_name = {r.mapping: r for r in report.results}
    assert by_name["api"].error_code == "SecretsStoreQuotaExceeded"
    assert "1 of 2 in use" in str(by_name["api"].error)
    assert by_name["db"].in_sync and by_name["script"].in_sync
    assert stack.values() == {"db-password": CANARY}  # nothing partial was created


def test_the_api_never_answers_a_value_the_store_holds_it(stack: Stack) -> None:
    """Canaries appear in the store and nowhere in what the API answers about it."""
    stack.put("db", {"password": CANARY})
    settings = make_settings([store_mapping("db", "db", {"password": "db-password"})], account=stack.account)
    assert stack.reconciler(settings).reconcile().ok
    client = SecretsStoreClient(stack.cloudflare)
    listed = client.list_secrets(stack.account, stack.store_id)
    assert [s.name for s in listed] == ["db-password"]
    assert leaks(repr(listed) + repr(client.quota(stack.account))) == []
    assert stack.devstack.cloudflare.secrets_store_value(stack.account, stack.store_id, "db-password") == CANARY
