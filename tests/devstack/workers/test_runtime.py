"""The devstack's Workers runtime: the deployed versions of every script answering in workerd.

Changes are made as the Cloudflare API or a person would (``CloudflareEmulator`` conveniences and
its real routes); what the Worker answers is read over HTTP from the Workers address.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.devstack.workers.runtime import WorkersRuntime
from tests.devstack.workers.conftest import Worker

pytestmark = pytest.mark.integration

CANARY = "canary-workers-runtime-51d0"
CANARY_2 = "canary-workers-runtime-second-77e2"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def text_secret(name: str, value: str) -> dict[str, str]:
    return {"name": name, "type": "secret_text", "text": value}


def test_the_default_worker_reports_a_fingerprint_of_each_text_binding_and_its_version_never_a_value(
    emulator: CloudflareEmulator, runtime: WorkersRuntime, worker: Worker
) -> None:
    version = emulator.hand_edit("my-worker", upserts={"API_KEY": text_secret("API_KEY", CANARY)})

    response = worker.get("my-worker")
    report = worker.wait_for("my-worker", lambda r: r["version"]["id"] == version.id)

    assert report["script"] == "my-worker"
    assert report["version"]["number"] == version.number
    assert report["bindings"] == {"API_KEY": {"type": "secret_text", "sha256": sha256(CANARY)}}
    assert CANARY not in response.text and CANARY not in json.dumps(runtime.status())


def test_a_rotation_shows_in_the_workers_response_once_the_runtime_reloaded(
    emulator: CloudflareEmulator, runtime: WorkersRuntime, worker: Worker
) -> None:
    emulator.hand_edit("my-worker", upserts={"API_KEY": text_secret("API_KEY", CANARY)})
    worker.wait_for("my-worker", lambda r: "API_KEY" in r["bindings"])
    assert runtime.wait_settled()  # the new process answers a moment before the old one is gone
    generation = runtime.status()["generation"]

    rotated = emulator.hand_edit("my-worker", upserts={"API_KEY": text_secret("API_KEY", CANARY_2)})

    assert runtime.wait_settled()
    report = worker.report("my-worker")
    assert report["bindings"]["API_KEY"]["sha256"] == sha256(CANARY_2)
    assert report["version"]["id"] == rotated.id
    assert runtime.status()["generation"] == generation + 1


def test_an_undeployed_version_is_not_served_until_it_is_deployed(
    emulator: CloudflareEmulator, runtime: WorkersRuntime, worker: Worker
) -> None:
    served = emulator.hand_edit("my-worker", upserts={"API_KEY": text_secret("API_KEY", CANARY)})
    staged = emulator.hand_edit("my-worker", upserts={"API_KEY": text_secret("API_KEY", CANARY_2)}, deploy=False)

    assert runtime.wait_settled()
    before = worker.report("my-worker")
    emulator.deploy("my-worker", {staged.id: 100})
    assert runtime.wait_settled()
    after = worker.report("my-worker")

    assert (before["version"]["id"], before["bindings"]["API_KEY"]["sha256"]) == (served.id, sha256(CANARY))
    assert (after["version"]["id"], after["bindings"]["API_KEY"]["sha256"]) == (staged.id, sha256(CANARY_2))


def test_a_50_50_gradual_deployment_splits_every_100_requests_exactly_and_alternates(
    emulator: CloudflareEmulator, runtime: WorkersRuntime, worker: Worker
) -> None:
    old = emulator.hand_edit("my-worker", upserts={"API_KEY": text_secret("API_KEY", CANARY)})
    new = emulator.hand_edit("my-worker", upserts={"API_KEY": text_secret("API_KEY", CANARY_2)}, deploy=False)
    emulator.deploy("my-worker", {old.id: 50, new.id: 50})
    assert runtime.wait_settled()

    served = [worker.get("my-worker").headers["x-devstack-version-id"] for _ in range(100)]

    assert served.count(old.id) == served.count(new.id) == 50
    assert all(a != b for a, b in itertools.pairwise(served))  # 50/50 alternates
    fingerprints = {worker.report("my-worker")["bindings"]["API_KEY"]["sha256"] for _ in range(2)}
    assert fingerprints == {sha256(CANARY), sha256(CANARY_2)}


def test_a_90_10_split_sends_exactly_10_of_100_requests_to_the_second_version(
    emulator: CloudflareEmulator, runtime: WorkersRuntime, worker: Worker
) -> None:
    old = emulator.latest_version("my-worker")
    new = emulator.upload_code("my-worker", message="canary release")
    emulator.deploy("my-worker", {old.id: 90, new.id: 10})
    assert runtime.wait_settled()

    served = [worker.get("my-worker").headers["x-devstack-version-id"] for _ in range(100)]

    assert (served.count(old.id), served.count(new.id)) == (90, 10)


def test_a_worker_answers_by_host_header_and_by_path_and_an_unknown_name_is_404(
    emulator: CloudflareEmulator, runtime: WorkersRuntime, worker: Worker
) -> None:
    emulator.create_script("second")
    assert runtime.wait_settled()

    by_host = httpx.get(runtime.url + "/any/path", headers={"Host": "second.localhost"}, timeout=10).json()
    by_path = worker.report("second")
    other_account = emulator.create_account()
    emulator.create_script("second", account_id=other_account)
    assert runtime.wait_settled()
    by_account = httpx.get(f"{runtime.url}/{other_account}/second/", timeout=10)
    unknown = worker.get("nothing-here")

    assert by_host["script"] == by_path["script"] == "second"
    assert by_account.status_code == 200
    assert by_account.headers["x-devstack-version-id"] == emulator.latest_version("second", account_id=other_account).id
    assert unknown.status_code == 404


def test_text_values_of_any_characters_reach_the_worker_byte_for_byte(
    emulator: CloudflareEmulator, runtime: WorkersRuntime, worker: Worker
) -> None:
    values = {
        "QUOTES": 'a "quoted" \\ back\\slash',
        "LINES": "line one\nline two\r\n\ttabbed",
        "UNICODE": "grüße ✓ 🔑 日本",
        "CONTROL": "\x00\x01\x7f end",
        "CAPNP": '") ]; const evil = (',
    }
    emulator.hand_edit("my-worker", upserts={name: text_secret(name, value) for name, value in values.items()})

    report = worker.wait_for("my-worker", lambda r: set(values) <= set(r["bindings"]))

    assert {name: report["bindings"][name]["sha256"] for name in values} == {n: sha256(v) for n, v in values.items()}


def test_uploaded_code_answers_with_its_own_response_and_sees_its_bindings(
    emulator: CloudflareEmulator, runtime: WorkersRuntime, worker: Worker
) -> None:
    code = (
        "export default { async fetch(request, env) {\n"
        "  return Response.json({ path: new URL(request.url).pathname, greeting: env.GREETING,\n"
        "    secret_type: typeof env.API_KEY, version: env.VERSION.id });\n"
        "} };\n"
    )
    metadata = {
        "main_module": "worker.js",
        "compatibility_date": "2099-01-01",  # later than the runtime knows: lowered to its own
        "bindings": [
            {"type": "plain_text", "name": "GREETING", "text": "hello"},
            {"type": "secret_text", "name": "API_KEY", "text": CANARY},
            {"type": "version_metadata", "name": "VERSION"},
        ],
    }
    files = {
        "metadata": (None, json.dumps(metadata), "application/json"),
        "worker.js": ("worker.js", code, "application/javascript+module"),
    }
    url = f"{emulator.api_base}/accounts/{emulator.account_id}/workers/scripts/uploaded"
    uploaded = httpx.put(url, files=files, headers={"Authorization": f"Bearer {emulator.api_token}"}, timeout=10)
    assert uploaded.status_code == 200, uploaded.text
    version = emulator.latest_version("uploaded")

    answer = worker.wait_for("uploaded", lambda r: r.get("version") == version.id, path="/deep/path")

    assert answer == {"path": "/deep/path", "greeting": "hello", "secret_type": "string", "version": version.id}


@pytest.fixture
def store_values() -> dict[tuple[str, str, str], str]:
    return {}


@pytest.fixture
def runtime_with_store(
    emulator: CloudflareEmulator, workerd: Path, store_values: dict[tuple[str, str, str], str]
) -> Iterator[WorkersRuntime]:
    def lookup(account_id: str, store_id: str, secret_name: str) -> str | None:
        return store_values.get((account_id, store_id, secret_name))

    served = WorkersRuntime(
        emulator.store, workerd, default_account=emulator.account_id, secrets_store_value=lookup
    ).start()
    try:
        yield served
    finally:
        served.stop()


def test_a_secrets_store_binding_reads_the_current_value_at_request_time_without_a_reload(
    emulator: CloudflareEmulator, runtime_with_store: WorkersRuntime, store_values: dict[tuple[str, str, str], str]
) -> None:
    worker = Worker(runtime_with_store.url)
    key = (emulator.account_id, "store-1", "shared")
    store_values[key] = CANARY
    binding = {"type": "secrets_store_secret", "name": "SHARED", "store_id": "store-1", "secret_name": "shared"}
    settings = {"settings": (None, json.dumps({"bindings": [binding]}), "application/json")}
    url = f"{emulator.api_base}/accounts/{emulator.account_id}/workers/scripts/my-worker/settings"
    headers = {"Authorization": f"Bearer {emulator.api_token}"}
    assert httpx.patch(url, files=settings, headers=headers, timeout=10).status_code == 200

    first = worker.wait_for("my-worker", lambda r: "SHARED" in r["bindings"])
    assert runtime_with_store.wait_settled()
    generation = runtime_with_store.status()["generation"]
    store_values[key] = CANARY_2
    second = worker.report("my-worker")
    del store_values[key]
    missing = worker.report("my-worker")

    assert first["bindings"]["SHARED"] == {"type": "secrets_store_secret", "sha256": sha256(CANARY)}
    assert second["bindings"]["SHARED"] == {"type": "secrets_store_secret", "sha256": sha256(CANARY_2)}
    assert "not found" in missing["bindings"]["SHARED"]["error"]
    assert runtime_with_store.status()["generation"] == generation


def test_a_config_workerd_refuses_leaves_the_previous_one_serving_and_says_so(
    emulator: CloudflareEmulator, runtime: WorkersRuntime, worker: Worker
) -> None:
    good = emulator.hand_edit("my-worker", upserts={"API_KEY": text_secret("API_KEY", CANARY)})
    assert runtime.wait_settled()
    not_a_key = {
        "name": "BROKEN",
        "type": "secret_key",
        "format": "pkcs8",
        "algorithm": {"name": "ECDSA", "namedCurve": "P-256"},
        "usages": ["sign"],
        "key_base64": "MAA=",  # an empty SEQUENCE: base64, but no key
    }

    emulator.hand_edit("my-worker", upserts={"BROKEN": not_a_key})
    assert runtime.wait_settled()

    assert worker.report("my-worker")["version"]["id"] == good.id
    assert "refused" in (runtime.status()["error"] or "")
    fixed = emulator.hand_edit("my-worker", deletes=["BROKEN"])
    assert runtime.wait_settled()
    assert worker.report("my-worker")["version"]["id"] == fixed.id
    assert runtime.status()["error"] is None


def test_a_burst_of_writes_is_one_reload(emulator: CloudflareEmulator, workerd: Path) -> None:
    runtime = WorkersRuntime(emulator.store, workerd, default_account=emulator.account_id, debounce_seconds=0.5)
    runtime.start()
    try:
        reloads_before = len(runtime.timings)
        for n in range(20):
            emulator.hand_edit("my-worker", upserts={"API_KEY": text_secret("API_KEY", f"{CANARY}-{n}")})
        assert runtime.wait_settled()
        report = Worker(runtime.url).report("my-worker")
        assert report["bindings"]["API_KEY"]["sha256"] == sha256(f"{CANARY}-19")
        assert len(runtime.timings) - reloads_before <= 2  # 20 deployments within the debounce window
    finally:
        runtime.stop()
