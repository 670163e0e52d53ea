"""Invariant 6 against a broken response: a proxy answering one script's write with a body that
cannot be decoded (``Content-Encoding: gzip`` over plain bytes) fails that mapping only, with a
typed Cloudflare error; the other scripts are written and the command exits 1, not with a crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import stamina

from tests.app.service_conftest_helpers import SCRIPT, Stack, running_stack
from tests.invariants.invariant_stack import KEY_SCRIPT, run_cli, seed_extras, write_invariant_config


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with running_stack(monkeypatch) as running, stamina.set_testing(True, attempts=10, cap=True):
        seed_extras(running)
        yield running


def test_an_undecodable_response_fails_only_its_script(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from syncd.devstack.httpkit import _fault_from_json  # noqa: PLC0415 - the admin route's parser

    fault = {
        "method": "PATCH",
        "path": f"*/scripts/{SCRIPT}/secrets-bulk",
        "status": 200,
        "body": "this is not gzip",
        "headers": {"Content-Encoding": "gzip"},
        "count": 5,
    }
    with stack.cf.state.lock:
        stack.cf.state.faults.append(_fault_from_json(fault))
    config = write_invariant_config(tmp_path, stack, cloudflare_retries=2)

    code, out, err = run_cli(capsys, "once", "--config", str(config))

    assert code == 1, err[-2000:]
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL app-api"), out
    assert "CloudflareTransportError" in failed[0]
    assert set(stack.cf.secrets_of(KEY_SCRIPT)) == {"HMAC_KEY", "SIGNING_KEY"}
