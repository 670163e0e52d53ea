"""``WorkerVersionsClient`` against the Cloudflare emulator over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
from syncd.clients.pacer import Pacer
from syncd.clients.worker_versions import MERGE_PATCH, WorkerVersionsClient
from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.errors import CloudflareNotDeployed, CloudflareNoVersions, CloudflareValidationError
from syncd.model import SecretBody, SecretValue, Target

CANARY = "canary-versions-client-5be1"


class Recording(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)


@pytest.fixture
def cf() -> Iterator[CloudflareEmulator]:
    emulator = CloudflareEmulator(scripts=["edge"]).start()
    emulator.create_namespace("tenants")
    emulator.create_script("t1", namespace="tenants")
    yield emulator
    threading.Thread(target=emulator.stop, daemon=True).start()


@pytest.fixture
def transport() -> Recording:
    return Recording()


@pytest.fixture
def versions(cf: CloudflareEmulator, transport: Recording) -> Iterator[WorkerVersionsClient]:
    client = CloudflareClient(
        cf.api_base,
        ApiTokenAuth(lambda: SecretValue(cf.api_token)),
        pacer=Pacer(1200, 300.0),
        transport=transport,
        retry_attempts=1,
    )
    yield WorkerVersionsClient(client, per_page=2)
    client.close()


def body(name: str, text: str) -> SecretBody:
    return SecretBody({"name": name, "type": "secret_text", "text": text})


def test_stage_secrets_makes_one_undeployed_version_with_a_merge_patch(
    cf: CloudflareEmulator, versions: WorkerVersionsClient, transport: Recording
) -> None:
    target = Target(cf.account_id, "edge")
    code = cf.upload_code("edge")  # latest not deployed
    deployed_before = cf.current_deployment("edge")

    staged = versions.stage_secrets(target, {"ONE": body("ONE", CANARY)}, "rotation of edge")

    latest = cf.latest_version("edge")
    assert (staged.id, staged.number) == (latest.id, code.number + 1)
    assert latest.secrets["ONE"]["text"] == CANARY
    assert latest.annotations["workers/message"] == "syncd: rotation of edge"
    assert cf.current_deployment("edge") == deployed_before
    sent = transport.requests[-1]
    path = f"/client/v4/accounts/{cf.account_id}/workers/workers/edge/versions/latest"
    assert (sent.method, sent.url.path) == ("PATCH", path)
    assert sent.headers["content-type"] == MERGE_PATCH


def test_list_versions_newest_first_stops_at_a_known_number_and_reads_bindings(
    cf: CloudflareEmulator, versions: WorkerVersionsClient
) -> None:
    target = Target(cf.account_id, "edge")
    for n in range(5):
        cf.hand_edit("edge", upserts={"K": {"name": "K", "type": "secret_text", "text": f"{CANARY}-{n}"}})

    listed = versions.list_versions(target, newer_than=2)
    first_page = versions.list_versions(target)

    assert [v.number for v in listed] == [6, 5, 4, 3]
    assert [v.number for v in first_page] == [6, 5]
    newest = listed[0]
    assert (newest.author_email, newest.source, newest.triggered_by) == ("someone.else@example.com", "dash", "secret")
    assert newest.secret_names == frozenset({"K"})
    assert CANARY not in repr(listed)


def test_namespaced_scripts_use_the_classic_routes(cf: CloudflareEmulator, versions: WorkerVersionsClient) -> None:
    target = Target(cf.account_id, "t1", "tenants")
    cf.hand_edit("t1", upserts={"K": {"name": "K", "type": "secret_text", "text": CANARY}}, namespace="tenants")

    (newest, *_) = versions.list_versions(target)
    detail = versions.version(target, newest.id)
    deployment = versions.current_deployment(target)

    assert newest.bindings is None and detail.secret_names == frozenset({"K"})
    assert deployment is not None and deployment.fully_deployed() == newest.id
    with pytest.raises(CloudflareValidationError):
        versions.stage_secrets(target, {"K": None}, "x")


def test_current_deployment_during_a_gradual_rollout(cf: CloudflareEmulator, versions: WorkerVersionsClient) -> None:
    code = cf.upload_code("edge")
    cf.deploy("edge", {code.id: 10, "1": 90})

    deployment = versions.current_deployment(Target(cf.account_id, "edge"))

    assert deployment is not None
    assert deployment.fully_deployed() is None
    assert dict(deployment.versions)[code.id] == 10


def test_typed_errors_for_10215_and_10222(cf: CloudflareEmulator, versions: WorkerVersionsClient) -> None:
    cf.create_script("bare", with_version=False)
    with pytest.raises(CloudflareNoVersions) as no_versions:
        versions.stage_secrets(Target(cf.account_id, "bare"), {"K": body("K", CANARY)}, "x")
    assert no_versions.value.code == 10222
    assert CANARY not in str(no_versions.value)
    cf.upload_code("edge")
    client = versions._client
    with pytest.raises(CloudflareNotDeployed):
        client.put_secret(Target(cf.account_id, "edge"), body("K", CANARY))
