"""``python -m syncd.devstack`` as a subprocess: one JSON line, working endpoints, exit 0 on SIGTERM."""

from __future__ import annotations

import json
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import cloudflare
import httpx
import pytest

from syncd.devstack.cli import main

READY_DEADLINE_SECONDS = 15.0
DESCRIBE_KEYS = {
    "vault_addr",
    "vault_token",
    "cloudflare_api_base",
    "cloudflare_api_token",
    "cloudflare_account_id",
    "kubernetes_api",
    "kubernetes_token",
    "kubernetes_namespace",
}


def read_line_before(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not selector.select(timeout=remaining):
            raise AssertionError("the devstack printed nothing before the deadline")
    return process.stdout.readline()


@pytest.fixture
def devstack() -> Iterator[subprocess.Popen[str]]:
    command = [sys.executable, "-m", "syncd.devstack", "--vault-port", "0", "--cloudflare-port", "0"]
    process = subprocess.Popen(
        [*command, "--script", "web", "--script", "api"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=10)


def test_devstack_prints_one_json_line_serves_both_apis_and_exits_0_on_sigterm(
    devstack: subprocess.Popen[str],
) -> None:
    described = json.loads(read_line_before(devstack, time.monotonic() + READY_DEADLINE_SECONDS))
    assert set(described) - {"workers_url"} == DESCRIBE_KEYS  # workers_url: when workerd is installed

    vault_headers = {"X-Vault-Token": described["vault_token"]}
    written = httpx.post(
        described["vault_addr"] + "/v1/secret/data/app", json={"data": {"password": "p"}}, headers=vault_headers
    )
    read_back = httpx.get(described["vault_addr"] + "/v1/secret/data/app", headers=vault_headers)
    account_id = described["cloudflare_account_id"]
    with cloudflare.Cloudflare(
        api_token=described["cloudflare_api_token"], base_url=described["cloudflare_api_base"], max_retries=0
    ) as client:
        client.workers.scripts.secrets.update(
            "web", account_id=account_id, name="PASSWORD", text="p", type="secret_text"
        )
        names = [s.name for s in client.workers.scripts.secrets.list("web", account_id=account_id)]
        api_secrets = list(client.workers.scripts.secrets.list("api", account_id=account_id))
    kube_headers = {"Authorization": f"Bearer {described['kubernetes_token']}"}
    leases = f"{described['kubernetes_api']}/apis/coordination.k8s.io/v1/namespaces/{described['kubernetes_namespace']}"
    lease_created = httpx.post(leases + "/leases", json={"metadata": {"name": "syncd"}}, headers=kube_headers)

    devstack.send_signal(signal.SIGTERM)
    stdout, _ = devstack.communicate(timeout=10)

    assert written.status_code == 200
    assert read_back.json()["data"]["data"] == {"password": "p"}
    assert names == ["PASSWORD"]
    assert api_secrets == []
    assert lease_created.status_code == 201
    assert devstack.returncode == 0
    assert stdout == ""  # exactly one line in all


def test_invalid_script_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--vault-port", "0", "--cloudflare-port", "0", "--script", "Not Valid"])

    assert code == 2
    assert "invalid script name" in capsys.readouterr().err


def test_port_in_use_fails_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["--vault-port", "0", "--cloudflare-port", str(port)])

    assert code == 1
    assert "cannot start" in capsys.readouterr().err


def test_bad_write_latency_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--vault-port", "0", "--cloudflare-port", "0", "--write-latency", "gaussian:1,2"])

    assert code == 2
    assert "bad write latency" in capsys.readouterr().err


def test_write_latency_reaches_the_cloudflare_emulator() -> None:
    from syncd.devstack.stack import Devstack  # noqa: PLC0415 - only this test needs the in-process stack

    with Devstack(write_latency="uniform:0.5,1.5@3") as stack:
        spec = httpx.get(stack.cloudflare.url + "/__devstack/latency").json()

    assert spec == {"kind": "uniform", "a": 0.5, "b": 1.5, "seed": 3}
