"""The real deployment flow, driven by the real wrangler against the devstack, seen from the Worker.

wrangler (pinned in ``scripts/setup-workers.sh``, run with Node 22) deploys a Worker, uploads a
second version, splits traffic 50/50 with ``versions deploy X@50 Y@50`` and lists the deployments;
syncd syncs a secret into it and, under ``on_undeployed = "stage"``, stages a rotation during the
split. Each step is checked where it ends: in the Worker's own answers on the Workers address.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.clients.vault import VaultReader, build_hvac_client
from syncd.clients.worker_versions import WorkerVersionsClient
from syncd.devstack.stack import Devstack
from syncd.engine.reconciler import Reconciler
from syncd.engine.report import Trigger
from tests.devstack.workers.conftest import Worker, require_wrangler
from tests.engine.test_reconciler_devstack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SCRIPT = "wr-app"
CANARY = "canary-wrangler-flow-0c9d"
WRANGLER_TIMEOUT_SECONDS = 120
WORKER_CODE = """
export default {
  async fetch(request, env) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(env.API_KEY || ""));
    const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    return Response.json({ release: "%RELEASE%", api_key_sha256: env.API_KEY ? hex : null });
  },
};
"""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Wrangler:
    def __init__(self, project: Path, described: dict[str, str]) -> None:
        self.node, self.script = require_wrangler()
        self.project = project
        self.env = {
            "PATH": f"{self.node.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(project / "home"),
            "CLOUDFLARE_API_BASE_URL": described["cloudflare_api_base"],
            "CLOUDFLARE_API_TOKEN": described["cloudflare_api_token"],
            "CLOUDFLARE_ACCOUNT_ID": described["cloudflare_account_id"],
            "WRANGLER_SEND_METRICS": "false",
            "CI": "true",
        }
        (project / "src").mkdir(parents=True)
        config = {"name": SCRIPT, "main": "src/index.js", "compatibility_date": "2025-06-01", "workers_dev": False}
        (project / "wrangler.json").write_text(json.dumps(config))

    def release(self, name: str) -> None:
        (self.project / "src" / "index.js").write_text(WORKER_CODE.replace("%RELEASE%", name))

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            [str(self.node), str(self.script), *args],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=WRANGLER_TIMEOUT_SECONDS,
            check=False,
        )
        assert done.returncode == 0, f"wrangler {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    require_wrangler()
    with Devstack(workers="on") as devstack:
        devstack.wait_until_ready()
        s = Stack(devstack, tmp_path / "state.sqlite3")
        try:
            yield s
        finally:
            s.state.close()
            s.cloudflare.close()


def syncd_reconciler(stack: Stack) -> Reconciler:
    mapping = {
        "name": "wr-app",
        "vault": {"mount": "secret", "path": "wr-app"},
        "target": {"script": SCRIPT},
        "secret_text": {"keys": {"api_key": "API_KEY"}},
        "on_undeployed": "stage",
    }
    hvac_client = build_hvac_client(
        stack.devstack.vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=4
    )
    hvac_client.token = stack.devstack.vault.root_token
    return Reconciler(
        stack.settings(mapping),
        VaultReader(hvac_client, retry_attempts=1),
        stack.cloudflare,
        stack.state,
        versions=WorkerVersionsClient(stack.cloudflare),
    )


def answers(stack: Stack, count: int = 6) -> set[tuple[str, str | None]]:
    workers = stack.devstack.workers
    assert workers is not None and workers.wait_settled()
    worker = Worker(workers.url)
    seen: set[tuple[str, str | None]] = set()
    for _ in range(count):
        body: dict[str, Any] = worker.report(SCRIPT)
        seen.add((body["release"], body["api_key_sha256"]))
    return seen


def test_deploy_upload_split_list_then_a_staged_rotation_as_the_worker_answers(stack: Stack, tmp_path: Path) -> None:
    wrangler = Wrangler(tmp_path / "project", stack.devstack.describe())
    cf = stack.devstack.cloudflare
    reconciler = syncd_reconciler(stack)

    wrangler.release("one")
    deployed = wrangler("deploy")
    assert answers(stack) == {("one", None)}
    assert cf.latest_version(SCRIPT).id in deployed  # "Current Version ID: ..."

    stack.put("wr-app", {"api_key": f"{CANARY}-1"})
    assert reconciler.reconcile(trigger=Trigger.STARTUP).ok
    assert answers(stack) == {("one", sha256(f"{CANARY}-1"))}
    with_secret = cf.latest_version(SCRIPT)

    wrangler.release("two")
    wrangler("versions", "upload")
    uploaded = cf.latest_version(SCRIPT)
    assert answers(stack) == {("one", sha256(f"{CANARY}-1"))}  # uploaded, not deployed
    assert uploaded.secrets == with_secret.secrets  # wrangler's keep_bindings kept the secret

    wrangler("versions", "deploy", f"{with_secret.id}@50", f"{uploaded.id}@50", "--yes")
    assert answers(stack) == {("one", sha256(f"{CANARY}-1")), ("two", sha256(f"{CANARY}-1"))}
    listed = json.loads(wrangler("deployments", "list", "--json"))
    newest = max(listed, key=lambda deployment: deployment["created_on"])
    assert sorted((v["version_id"], v["percentage"]) for v in newest["versions"]) == sorted(
        [(with_secret.id, 50), (uploaded.id, 50)]
    )

    stack.put("wr-app", {"api_key": f"{CANARY}-2"})
    report = reconciler.reconcile(trigger=Trigger.NOTIFICATION)
    staged = cf.latest_version(SCRIPT)
    assert (report.results[0].error_code, report.results[0].staged_version) == ("Staged", staged.number)
    assert answers(stack) == {("one", sha256(f"{CANARY}-1")), ("two", sha256(f"{CANARY}-1"))}

    wrangler("versions", "deploy", f"{staged.id}@100", "--yes")
    assert answers(stack) == {("two", sha256(f"{CANARY}-2"))}
