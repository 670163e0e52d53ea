"""Versions, deployments and settings driven by the official ``cloudflare`` SDK 5.9 over real HTTP.

Two SDK quirks, both in the SDK and not the emulator: ``versions.get`` cannot parse any answer
that has ``resources`` (its ``ResourcesBindings`` is a bare class pydantic cannot build a schema
for), so it is called through ``with_raw_response``; ``deployments.list`` types the page as
``result.items`` while the API (and wrangler) answer ``result.deployments``, which the SDK keeps
as an extra field of ``page.result``.
"""

from __future__ import annotations

import io
from typing import Any

import cloudflare
import pytest

from syncd.devstack.cloudflare import CloudflareEmulator
from tests.devstack.cloudflare.helpers import SCRIPT

CANARY = "canary-versions-sdk-7f3a"


def _code(error: cloudflare.APIStatusError) -> object:
    body: Any = error.body
    return body["errors"][0]["code"]


def _secret_writes(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare) -> None:
    secrets = sdk.workers.scripts.secrets
    secrets.update(SCRIPT, account_id=cf.account_id, name="A", text=CANARY, type="secret_text")
    secrets.bulk_update(
        SCRIPT,
        account_id=cf.account_id,
        secrets={"B": {"name": "B", "type": "secret_text", "text": CANARY + "-b"}},
        version_tags={"workers/message": "rotated by syncd", "workers/tag": "syncd"},
    )
    secrets.delete("A", account_id=cf.account_id, script_name=SCRIPT)


def test_every_secret_write_makes_a_deployed_version_listed_newest_first(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare
) -> None:
    _secret_writes(cf, sdk)

    listed = list(sdk.workers.scripts.versions.list(SCRIPT, account_id=cf.account_id, per_page=2))
    first_page = sdk.workers.scripts.versions.list(SCRIPT, account_id=cf.account_id, per_page=2)

    assert [v.number for v in listed] == [4, 3, 2, 1]
    assert [v.id for v in listed] == [v.id for v in reversed(cf.version_list(SCRIPT))]
    assert first_page.result_info is not None
    assert (first_page.result_info.page, first_page.result_info.per_page) == (1, 2)
    newest = listed[0]
    assert newest.metadata is not None
    assert (newest.metadata.source, newest.metadata.author_email) == ("api", "devstack@example.com")
    tagged = cf.version_list(SCRIPT)[2]
    assert tagged.annotations == {
        "workers/message": "rotated by syncd",
        "workers/tag": "syncd",
        "workers/triggered_by": "secret",
    }
    deployment = cf.current_deployment(SCRIPT)
    assert deployment is not None
    assert deployment.split == [(newest.id, 100)]


def test_version_detail_names_bindings_without_values(cf: CloudflareEmulator, sdk: cloudflare.Cloudflare) -> None:
    _secret_writes(cf, sdk)
    tagged = cf.version_list(SCRIPT)[2]

    raw = sdk.workers.scripts.versions.with_raw_response.get(tagged.id, account_id=cf.account_id, script_name=SCRIPT)
    body: Any = raw.json()

    assert CANARY not in raw.text()
    version = body["result"]
    assert (version["id"], version["number"]) == (tagged.id, 3)
    assert version["annotations"]["workers/tag"] == "syncd"
    assert version["metadata"]["author_id"] == tagged.author.user_id
    assert sorted(version["resources"]["bindings"], key=lambda b: b["name"]) == [
        {"name": "A", "type": "secret_text"},
        {"name": "B", "type": "secret_text"},
    ]


def test_deployments_list_and_a_gradual_deployment_created_through_the_sdk(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare
) -> None:
    deployments = sdk.workers.scripts.deployments
    new_code = cf.upload_code(SCRIPT)  # a version uploaded, not deployed
    old = cf.version_list(SCRIPT)[0]

    created = deployments.create(
        SCRIPT,
        account_id=cf.account_id,
        strategy="percentage",
        versions=[{"version_id": new_code.id, "percentage": 10}, {"version_id": old.id, "percentage": 90}],
        annotations={"workers_message": "canary 10 %"},
    )
    page = deployments.list(SCRIPT, account_id=cf.account_id)
    assert page.result is not None
    listed = (page.result.model_extra or {})["deployments"]

    assert created is not None
    assert [(v.version_id, v.percentage) for v in created.versions] == [(new_code.id, 10), (old.id, 90)]
    assert created.annotations is not None
    assert created.annotations.workers_message == "canary 10 %"
    assert [d["id"] for d in listed] == [created.id, *(d["id"] for d in listed[1:])]
    assert len(listed) == 2  # the gradual one, then version 1's
    assert listed[1]["versions"] == [{"version_id": old.id, "percentage": 100}]


def test_secret_writes_are_refused_while_a_gradual_deployment_runs(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare
) -> None:
    new_code = cf.upload_code(SCRIPT)
    cf.deploy(SCRIPT, {new_code.id: 50, "1": 50})

    with pytest.raises(cloudflare.BadRequestError) as refused:
        sdk.workers.scripts.secrets.update(SCRIPT, account_id=cf.account_id, name="A", text=CANARY, type="secret_text")

    assert _code(refused.value) == 10215
    assert cf.versions_of(SCRIPT) == 2


def test_settings_get_and_edit_inherit_bindings_given_by_name_and_type(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare
) -> None:
    _secret_writes(cf, sdk)  # leaves B
    settings = sdk.workers.scripts.script_and_version_settings

    before = settings.get(SCRIPT, account_id=cf.account_id)
    change: Any = {
        "bindings": [
            {"type": "secret_text", "name": "B"},  # inherited: keeps its value
            {"type": "secret_text", "name": "C", "text": CANARY + "-c"},
        ],
        "annotations": {"workers_message": "settings edit"},
    }
    edited = settings.edit(SCRIPT, account_id=cf.account_id, settings=change)

    assert before is not None and edited is not None
    assert [(b.name, b.type) for b in before.bindings or []] == [("B", "secret_text")]
    assert sorted((b.name, b.type) for b in edited.bindings or []) == [("B", "secret_text"), ("C", "secret_text")]
    assert CANARY not in edited.to_json()
    latest = cf.latest_version(SCRIPT)
    assert {name: s["text"] for name, s in latest.secrets.items()} == {"B": CANARY + "-b", "C": CANARY + "-c"}
    assert latest.annotations["workers/message"] == "settings edit"
    deployment = cf.current_deployment(SCRIPT)
    assert deployment is not None and deployment.split == [(latest.id, 100)]


def test_settings_edit_is_refused_with_10214_on_an_undeployed_latest_version(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare
) -> None:
    cf.set_undeployed(SCRIPT)

    with pytest.raises(cloudflare.BadRequestError) as refused:
        sdk.workers.scripts.script_and_version_settings.edit(
            SCRIPT, account_id=cf.account_id, settings={"bindings": [{"type": "secret_text", "name": "X", "text": "x"}]}
        )

    assert _code(refused.value) == 10214
    assert cf.versions_of(SCRIPT) == 2


def test_beta_versions_list_shows_annotations_and_secret_names(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare
) -> None:
    _secret_writes(cf, sdk)

    versions = list(sdk.workers.beta.workers.versions.list(SCRIPT, account_id=cf.account_id, per_page=3))
    one = sdk.workers.beta.workers.versions.get(versions[1].id, account_id=cf.account_id, worker_id=SCRIPT)

    assert [v.number for v in versions] == [4, 3, 2, 1]
    assert one.annotations is not None
    assert (one.annotations.workers_tag, one.annotations.workers_triggered_by) == ("syncd", "secret")
    assert [(b.name, b.type) for b in one.bindings or []] == [("A", "secret_text"), ("B", "secret_text")]
    assert CANARY not in one.to_json()


def test_version_upload_through_the_sdk_inherits_secrets_and_is_not_deployed(
    cf: CloudflareEmulator, sdk: cloudflare.Cloudflare
) -> None:
    _secret_writes(cf, sdk)  # leaves B
    deployed = cf.latest_version(SCRIPT)
    module = ("index.js", io.BytesIO(b"export default {}"), "application/javascript+module")
    metadata: Any = {
        "main_module": "index.js",
        "bindings": [{"type": "inherit", "name": "B"}, {"type": "inherit", "name": "GHOST"}],
        "annotations": {"workers/message": "code v2"},
    }

    created = sdk.workers.scripts.versions.with_raw_response.create(
        SCRIPT, account_id=cf.account_id, metadata=metadata, files=[module]
    )
    with pytest.raises(cloudflare.BadRequestError) as strict:
        sdk.workers.scripts.versions.with_raw_response.create(
            SCRIPT, account_id=cf.account_id, metadata=metadata, files=[module], bindings_inherit="strict"
        )

    assert created.http_response.status_code == 200
    assert CANARY not in created.http_response.text
    latest = cf.latest_version(SCRIPT)
    assert (latest.number, set(latest.secrets)) == (5, {"B"})  # GHOST could not be inherited: dropped
    assert latest.secrets["B"]["text"] == CANARY + "-b"
    assert latest.annotations == {"workers/message": "code v2", "workers/triggered_by": "upload"}
    deployment = cf.current_deployment(SCRIPT)
    assert deployment is not None and deployment.split == [(deployed.id, 100)]
    assert _code(strict.value) == 10021
    assert cf.versions_of(SCRIPT) == 5
