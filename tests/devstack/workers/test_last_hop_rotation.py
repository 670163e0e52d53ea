"""Rotations seen from the Worker: syncd writes, the runtime reloads, the Worker's answer changes.

The Reconciler with the real clients runs against the devstack (Vault, Cloudflare, workerd). A
rotation shows in the default Worker's fingerprint; under ``on_undeployed = "stage"`` during a
50/50 gradual deployment, both deployed versions keep answering with the old value until the
staged version is deployed, and then only it answers, with the new one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.clients.vault import VaultReader, build_hvac_client
from syncd.clients.worker_versions import WorkerVersionsClient
from syncd.devstack.stack import Devstack
from syncd.devstack.workers.default_worker import MESSAGE
from syncd.engine.reconciler import Reconciler
from syncd.engine.report import CycleReport, Trigger
from tests.devstack.workers.conftest import Worker, require_workerd
from tests.engine.test_reconciler_devstack import Stack

pytestmark = pytest.mark.integration

CANARY = "canary-last-hop-rotation-3f1a"
SCRIPT = "edge"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Rig:
    def __init__(self, stack: Stack, worker: Worker, on_undeployed: str) -> None:
        self.stack = stack
        self.worker = worker
        mapping = {
            "name": "edge",
            "vault": {"mount": "secret", "path": "edge"},
            "target": {"script": SCRIPT},
            "secret_text": {"keys": {"api_key": "API_KEY"}},
            "secret_key": [
                {
                    "vault_key": "hmac",
                    "binding": "HMAC_KEY",
                    "format": "raw",
                    "encoding": "hex",
                    "algorithm": {"name": "HMAC", "hash": "SHA-256"},
                    "usages": ["sign"],
                }
            ],
            "on_undeployed": on_undeployed,
        }
        hvac_client = build_hvac_client(
            stack.devstack.vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=4
        )
        hvac_client.token = stack.devstack.vault.root_token
        self.reconciler = Reconciler(
            stack.settings(mapping),
            VaultReader(hvac_client, retry_attempts=1),
            stack.cloudflare,
            stack.state,
            versions=WorkerVersionsClient(stack.cloudflare),
        )

    def rotate(self, n: int) -> CycleReport:
        self.stack.put("edge", {"api_key": f"{CANARY}-{n}", "hmac": hmac_key(n).hex()})
        return self.reconciler.reconcile(trigger=Trigger.NOTIFICATION)

    def settled(self) -> None:
        workers = self.stack.devstack.workers
        assert workers is not None and workers.wait_settled()

    def answers(self, count: int = 10) -> list[tuple[str, str]]:
        """(version id, API_KEY fingerprint) of ``count`` requests."""
        seen = []
        for _ in range(count):
            report = self.worker.report(SCRIPT)
            seen.append((report["version"]["id"], report["bindings"]["API_KEY"]["sha256"]))
        return seen


def hmac_key(n: int) -> bytes:
    return hashlib.sha256(f"hmac-key-{n}".encode()).digest()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    require_workerd()
    with Devstack(scripts=[SCRIPT], workers="on") as devstack:
        devstack.wait_until_ready()
        s = Stack(devstack, tmp_path / "state.sqlite3")
        try:
            yield s
        finally:
            s.state.close()
            s.cloudflare.close()


def worker_of(stack: Stack) -> Worker:
    assert stack.devstack.workers is not None
    return Worker(stack.devstack.workers.url)


def test_each_rotation_shows_in_the_workers_own_answer(stack: Stack) -> None:
    rig = Rig(stack, worker_of(stack), "report")
    for n in (1, 2, 3):
        assert rig.rotate(n).ok
        rig.settled()
        report: dict[str, Any] = rig.worker.report(SCRIPT)
        mac = base64.b64decode(report["bindings"]["HMAC_KEY"]["result_base64"])
        assert report["bindings"]["API_KEY"]["sha256"] == sha256(f"{CANARY}-{n}")
        assert hmac.compare_digest(mac, hmac.new(hmac_key(n), MESSAGE.encode(), "sha256").digest())
        assert report["version"]["id"] == stack.devstack.cloudflare.latest_version(SCRIPT).id
        assert CANARY not in str(report)


def test_a_staged_rotation_is_not_served_during_a_50_50_deployment_until_its_version_is_deployed(
    stack: Stack,
) -> None:
    cf = stack.devstack.cloudflare
    rig = Rig(stack, worker_of(stack), "stage")
    assert rig.rotate(1).ok
    old = cf.latest_version(SCRIPT)
    new_code = cf.upload_code(SCRIPT, message="a new release, rolled out gradually")
    cf.deploy(SCRIPT, {old.id: 50, new_code.id: 50})
    rig.settled()
    during = rig.answers()

    report = rig.rotate(2)
    staged = cf.latest_version(SCRIPT)
    rig.settled()
    while_staged = rig.answers()
    cf.deploy(SCRIPT, {staged.id: 100})
    rig.settled()
    after = rig.answers()

    assert {version for version, _ in during} == {old.id, new_code.id}  # both versions answer
    assert (report.results[0].error_code, report.results[0].staged_version) == ("Staged", staged.number)
    assert set(while_staged) == set(during)  # nothing staged is served
    assert {fingerprint for _, fingerprint in while_staged} == {sha256(f"{CANARY}-1")}
    assert set(after) == {(staged.id, sha256(f"{CANARY}-2"))}
