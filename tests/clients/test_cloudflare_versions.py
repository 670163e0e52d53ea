"""CloudflareVersions against the Cloudflare emulator over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
from syncd.clients.cloudflare_versions import CloudflareVersions, SecretBinding
from syncd.clients.pacer import Pacer
from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.errors import CloudflareNotDeployed, CloudflareNotFound, CloudflareNoVersions
from syncd.model import SecretBody, SecretValue, Target
from tests.clients.conftest import CANARY_VALUE, assert_error_clean


@pytest.fixture
def cf() -> Iterator[CloudflareEmulator]:
    with CloudflareEmulator(scripts=("a",)) as emulator:
        yield emulator


@pytest.fixture
def client(cf: CloudflareEmulator) -> Iterator[CloudflareClient]:
    with CloudflareClient(
        cf.api_base, ApiTokenAuth(lambda: SecretValue(cf.api_token)), pacer=Pacer(1200, 300.0), timeout=5.0
    ) as made:
        yield made


@pytest.fixture
def versions(client: CloudflareClient) -> CloudflareVersions:
    return CloudflareVersions(client, per_page=2)


def text(name: str, value: str) -> SecretBody:
    return SecretBody({"name": name, "type": "secret_text", "text": value})


def test_versions_newest_first_stopping_at_a_known_number(
    cf: CloudflareEmulator, client: CloudflareClient, versions: CloudflareVersions
) -> None:
    target = Target(cf.account_id, "a")
    for n in range(4):
        client.put_secret(target, text(f"S{n}", "x"))

    every = versions.list_versions(target)
    newer = versions.list_versions(target, newer_than=2)
    two = versions.list_versions(target, limit=2)

    assert [v.number for v in every] == [5, 4, 3, 2, 1]
    assert [v.number for v in newer] == [5, 4, 3]
    assert [v.number for v in two] == [5, 4]
    assert (every[0].source, every[0].triggered_by, every[-1].triggered_by) == ("api", "secret", "upload")
    assert every[0].id == cf.latest_version("a").id


def test_stage_secrets_makes_an_undeployed_syncd_version_holding_exactly_the_new_values(
    cf: CloudflareEmulator, client: CloudflareClient, versions: CloudflareVersions
) -> None:
    target = Target(cf.account_id, "a")
    client.bulk_update(target, {"KEEP": text("KEEP", "k"), "OLD": text("OLD", "o")})
    cf.upload_code("a")  # a gradual rollout starts: direct edits are refused
    with pytest.raises(CloudflareNotDeployed) as refused:
        client.bulk_update(target, {"NEW": text("NEW", CANARY_VALUE)})

    staged = versions.stage_secrets(target, {"NEW": text("NEW", CANARY_VALUE), "OLD": None}, "rotation of app/api")
    detail = versions.get_version(target, staged.id)
    deployment = versions.current_deployment(target)

    assert refused.value.code == 10214
    assert (staged.number, staged.made_by_syncd, staged.message) == (4, True, "syncd: rotation of app/api")
    assert detail.secrets == (SecretBinding("KEEP", "secret_text"), SecretBinding("NEW", "secret_text"))
    assert {n: s["text"] for n, s in cf.latest_version("a").secrets.items()} == {"KEEP": "k", "NEW": CANARY_VALUE}
    assert deployment is not None
    assert deployment.sole_version_id == cf.version_list("a")[1].id  # still version 2: nothing deployed
    assert CANARY_VALUE not in repr(staged) + repr(detail) + repr(deployment)


def test_a_gradual_deployment_has_no_sole_version(cf: CloudflareEmulator, versions: CloudflareVersions) -> None:
    new = cf.upload_code("a")
    cf.deploy("a", {new.id: 10, "1": 90})

    deployment = versions.current_deployment(Target(cf.account_id, "a"))

    assert deployment is not None
    assert deployment.sole_version_id is None
    assert [(s.version_id, s.percentage) for s in deployment.versions] == [
        (new.id, 10.0),
        (cf.version_list("a")[0].id, 90.0),
    ]


def test_no_versions_is_a_typed_error_and_unknown_scripts_are_not_found(
    cf: CloudflareEmulator, versions: CloudflareVersions
) -> None:
    cf.create_script("bare", with_version=False)

    with pytest.raises(CloudflareNoVersions) as none:
        versions.stage_secrets(Target(cf.account_id, "bare"), {"A": text("A", CANARY_VALUE)}, "first")
    with pytest.raises(CloudflareNotFound):
        versions.list_versions(Target(cf.account_id, "missing"))

    assert none.value.code == 10222
    assert_error_clean(none.value)
    assert versions.current_deployment(Target(cf.account_id, "bare")) is None


def test_staging_sends_what_wrangler_sends(cf: CloudflareEmulator, versions: CloudflareVersions) -> None:
    versions.stage_secrets(Target(cf.account_id, "a"), {"A": text("A", "v")}, "syncd: x")

    log = httpx.get(cf.url + "/__devstack/requests").json()["requests"]

    assert [(e["method"], e["path"]) for e in log] == [
        ("PATCH", f"/client/v4/accounts/{cf.account_id}/workers/workers/a/versions/latest")
    ]
    assert cf.latest_version("a").annotations["workers/message"] == "syncd: x"


def test_dispatch_namespace_scripts_cannot_be_staged(cf: CloudflareEmulator, versions: CloudflareVersions) -> None:
    with pytest.raises(ValueError, match="dispatch-namespace"):
        versions.stage_secrets(Target(cf.account_id, "t", "ns"), {"A": text("A", "v")}, "x")
