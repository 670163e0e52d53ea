"""The staging and drift behaviours when other people's writes and deployments are made through the
official ``cloudflare`` SDK (5.9) against the emulator, as a team's scripts or Terraform would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cloudflare
import pytest

from syncd.devstack.stack import Devstack
from tests.app.test_drift_devstack import SCRIPTS, Rig, rig, rotate
from tests.engine.conftest import CANARY
from tests.engine.test_reconciler_devstack import Stack


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


@pytest.fixture
def sdk(stack: Stack) -> Iterator[cloudflare.Cloudflare]:
    cf = stack.devstack.cloudflare
    with cloudflare.Cloudflare(api_token=cf.create_token("write"), base_url=cf.api_base, max_retries=0) as client:
        yield client


def split(r: Rig, sdk: cloudflare.Cloudflare, script: str, shares: dict[int, float]) -> None:
    cf = r.stack.devstack.cloudflare
    ids = {v.number: v.id for v in cf.version_list(script)}
    sdk.workers.scripts.deployments.create(
        script,
        account_id=cf.account_id,
        strategy="percentage",
        versions=[{"version_id": ids[number], "percentage": pct} for number, pct in shares.items()],
    )


def test_stage_during_a_gradual_deployment_made_with_the_sdk_then_deployed_with_the_sdk(
    stack: Stack, sdk: cloudflare.Cloudflare
) -> None:
    r = rig(stack, on_undeployed="stage")
    new = r.post("edge", "/versions", {"deploy": False})  # new code uploaded by the team's CI
    split(r, sdk, "edge", {new["number"]: 10, new["number"] - 1: 90})
    rotate(stack, 2)

    (result,) = r.cycle().results

    staged = stack.devstack.cloudflare.latest_version("edge")
    assert (result.error_code, result.staged_version) == ("Staged", staged.number)
    assert r.version_secrets("edge", staged.number) == {"ONE": f"{CANARY}-1-v2", "TWO": f"{CANARY}-2-v2"}
    listed = list(sdk.workers.beta.workers.versions.list("edge", account_id=stack.devstack.cloudflare.account_id))
    assert listed[0].number == staged.number
    split(r, sdk, "edge", {staged.number: 100})
    r.checker.check_now()
    assert r.status("edge").in_sync


def test_report_during_a_gradual_deployment_made_with_the_sdk(stack: Stack, sdk: cloudflare.Cloudflare) -> None:
    r = rig(stack)
    new = r.post("edge", "/versions", {"deploy": False})
    split(r, sdk, "edge", {new["number"]: 50, new["number"] - 1: 50})
    rotate(stack, 2)
    (result,) = r.cycle().results
    assert result.error_code is not None and result.error_code.startswith("CloudflareNotDeployed")


def test_sdk_overwrite_and_delete_are_corrected(stack: Stack, sdk: cloudflare.Cloudflare) -> None:
    r = rig(stack)
    account = stack.devstack.cloudflare.account_id
    r.checker.check_now()
    sdk.workers.scripts.secrets.update("edge", account_id=account, name="ONE", text="by-hand", type="secret_text")

    (finding,) = r.checker.check_now()
    assert finding.kind == "overwritten"
    assert r.correct().ok
    assert stack.texts("edge")["ONE"] == f"{CANARY}-1"

    sdk.workers.scripts.secrets.delete("TWO", account_id=account, script_name="edge")
    (finding,) = r.checker.check_now()
    assert (finding.kind, finding.missing) == ("missing", frozenset({"TWO"}))
    assert r.correct().ok
    assert stack.texts("edge") == {"ONE": f"{CANARY}-1", "TWO": f"{CANARY}-2"}


def test_an_sdk_deployment_of_new_code_that_keeps_secrets_is_not_drift(
    stack: Stack, sdk: cloudflare.Cloudflare
) -> None:
    r = rig(stack)
    r.checker.check_now()
    new = r.post("edge", "/versions", {"deploy": False})
    split(r, sdk, "edge", {new["number"]: 100})

    assert [f.kind for f in r.checker.check_now()] == ["none"]
    assert r.requested == []


def test_an_sdk_edit_of_a_binding_syncd_does_not_own_leaves_it_alone(
    stack: Stack, sdk: cloudflare.Cloudflare
) -> None:
    r = rig(stack)
    account = stack.devstack.cloudflare.account_id
    r.checker.check_now()
    sdk.workers.scripts.secrets.update("other", account_id=account, name="THEIRS", text="x", type="secret_text")

    assert [f.target.script for f in r.checker.check_now()] == ["edge"]  # "other" holds nothing of syncd's
    assert r.requested == []
