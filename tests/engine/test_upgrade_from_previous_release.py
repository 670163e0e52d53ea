"""An upgrade keeps the state (invariant 12): state written by the previous release (0.1.0, by
``data/previous_release/make.py`` running that release's own code) is migrated, and the first cycle
of this release over the same, unchanged world makes no Cloudflare call and rewrites no binding.

The fixture holds both backends' forms: the SQLite file (schema 2) and one ``kubernetes`` chunk
(``syncd-state/1`` without the ``staged_version`` column). In both, the staged mapping was recorded
as the error code ``Staged(4)``, which the migration turns into ``staged_version = 4``.
"""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import hvac
import pytest

from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
from syncd.clients.pacer import Pacer
from syncd.clients.vault import VaultReader, build_hvac_client
from syncd.config import Settings
from syncd.devstack.stack import Devstack
from syncd.engine.reconciler import Reconciler
from syncd.engine.state import SCHEMA_VERSION, StateBackend, StateStore
from syncd.engine.state.chunks import DATA_KEY
from syncd.engine.state.kubernetes import KubernetesStateStore
from syncd.model import SecretValue
from tests.engine.fake_secrets import FakeSecrets

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data" / "previous_release"


def _fixture_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("previous_release_make", DATA / "make.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RELEASE = _fixture_module()


@pytest.fixture(scope="module")
def devstack() -> Iterator[Devstack]:
    with Devstack() as stack:
        stack.wait_until_ready()
        stack.cloudflare.store.create_account(RELEASE.ACCOUNT)
        for script in RELEASE.SCRIPTS:
            stack.cloudflare.store.create_script(RELEASE.ACCOUNT, script)
        admin = hvac.Client(url=stack.vault.url, token=stack.vault.root_token)
        for path, versions in RELEASE.WORLD.items():
            for data in versions:
                admin.secrets.kv.v2.create_or_update_secret(path, data, mount_point="secret")
        yield stack


def _requests(url: str) -> list[tuple[str, str]]:
    logged = httpx.get(f"{url}/__devstack/requests").json()["requests"]
    return [(r["method"], r["path"]) for r in logged if not r["path"].startswith("/__devstack")]


def _first_cycle(devstack: Devstack, state: StateBackend) -> Any:
    for url in (devstack.vault.url, devstack.cloudflare.url):
        httpx.delete(f"{url}/__devstack/requests").raise_for_status()
    hvac_client = build_hvac_client(
        devstack.vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=2
    )
    hvac_client.token = devstack.vault.root_token
    with CloudflareClient(
        devstack.cloudflare.api_base,
        ApiTokenAuth(lambda: SecretValue(devstack.cloudflare.api_token)),
        pacer=Pacer(1200, 300.0),
        timeout=5.0,
        retry_attempts=1,
    ) as cloudflare:
        settings = Settings.model_validate(RELEASE.settings_document())
        return Reconciler(settings, VaultReader(hvac_client, retry_attempts=1), cloudflare, state).reconcile()


def _assert_upgrade_is_free(devstack: Devstack, state: StateBackend) -> None:
    before = state.bindings()
    report = _first_cycle(devstack, state)

    assert _requests(devstack.cloudflare.url) == []
    vault_paths = sorted(path for _, path in _requests(devstack.vault.url))
    assert vault_paths.count("/v1/secret/metadata/app/api") == 1
    results = {r.mapping: r for r in report.results}
    assert results["api"].in_sync and results["signing"].in_sync
    assert not any(r.changes for r in report.results)
    staged = results[RELEASE.STAGED_MAPPING]
    assert (staged.error_code, staged.staged_version, staged.in_sync) == ("Staged", RELEASE.STAGED_VERSION, False)
    assert state.bindings() == before  # no binding rewritten, not even in the state


def test_a_previous_release_sqlite_state_migrates_and_costs_no_cloudflare_call(
    devstack: Devstack, tmp_path: Path
) -> None:
    path = tmp_path / "state.sqlite3"
    shutil.copy(DATA / "state.sqlite3", path)
    with StateStore.open(path) as state:
        assert state.hmac_key == (DATA / "hmac_key.bin").read_bytes()
        status = state.mapping_status(RELEASE.STAGED_MAPPING)
        assert status is not None
        assert (status.last_error_code, status.staged_version) == ("Staged", RELEASE.STAGED_VERSION)
        _assert_upgrade_is_free(devstack, state)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


def test_a_previous_release_kubernetes_chunk_migrates_and_costs_no_cloudflare_call(devstack: Devstack) -> None:
    api = FakeSecrets()
    api.create("syncd-state-0", {DATA_KEY: (DATA / "chunk.json.gz").read_bytes()})
    state = KubernetesStateStore.open(
        api,
        ("syncd-state-0",),
        hmac_key=(DATA / "hmac_key.bin").read_bytes(),
    )
    try:
        status = state.mapping_status(RELEASE.STAGED_MAPPING)
        assert status is not None
        assert (status.last_error_code, status.staged_version) == ("Staged", RELEASE.STAGED_VERSION)
        _assert_upgrade_is_free(devstack, state)
    finally:
        state.close()
