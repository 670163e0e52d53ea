"""The command line with a Kubernetes state and leader election (issue 16's defects):

- ``syncd status`` reads ``[state] backend = "kubernetes"`` (the state Secrets), not the SQLite path;
- ``syncd run`` with leader election outside a pod, without ``api_url`` (or without ``namespace``),
  says what to set and exits 2, without a traceback.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.app.cli.commands import run_status
from syncd.app.state_backend import open_configured_state
from syncd.config import Settings, parse_config
from syncd.devstack.kubernetes import SECRETS, KubernetesEmulator
from syncd.engine.state import MappingOutcome
from tests.app.conftest import run_cli
from tests.core.test_config import BASE

NAMES = ("syncd-state-0", "syncd-state-1")
KEY = "cli-fingerprint-key-0123456789abcdef0123"
HA = """
[sync]
fingerprint_key = {{ env = "SYNCD_TEST_FINGERPRINT_KEY" }}
state_path = "{state_path}"
[state]
backend = "kubernetes"
[state.kubernetes]
secret_count = 2
[leader_election]
{election}
"""
MAPPING = """
[[mapping]]
name = "edge"
vault = { mount = "secret", path = "edge" }
target = { script = "edge-worker" }
secret_text = { keys = { k = "K" } }
"""


@pytest.fixture
def kube() -> Iterator[KubernetesEmulator]:
    emulator = KubernetesEmulator(namespace="syncd").start()
    for name in NAMES:
        emulator.put_object(SECRETS, {"metadata": {"name": name}, "type": "Opaque"})
    yield emulator
    threading.Thread(target=emulator.stop, name="stop-emulator", daemon=True).start()


def _settings(tmp_path: Path, election: str) -> Settings:
    text = BASE + HA.format(state_path=tmp_path / "absent.sqlite3", election=election) + MAPPING
    return parse_config(text)


@pytest.mark.integration
def test_status_reads_the_kubernetes_state_not_the_sqlite_path(
    kube: KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCD_TEST_FINGERPRINT_KEY", KEY)
    (tmp_path / "token").write_text(kube.token)
    settings = _settings(tmp_path, f'api_url = "{kube.url}"\nnamespace = "syncd"\ntoken_file = "{tmp_path / "token"}"')
    with open_configured_state(settings, fingerprint_key=KEY.encode()) as state:  # what the leader wrote
        state.record_mapping_results([MappingOutcome("edge", 1.0, "cfg", 4, True, True, None, None)])

    out = io.StringIO()
    assert run_status(settings, out) == 0
    text = out.getvalue()
    assert "no state yet" not in text
    assert "ok   edge: pushed v4 at" in text
    as_json = io.StringIO()
    run_status(settings, as_json, as_json=True)
    document = json.loads(as_json.getvalue())
    assert document["state_backend"] == "kubernetes"
    assert document["mappings"][0]["last_version"] == 4


@pytest.mark.parametrize(
    ("election", "what_to_set"),
    [
        ("enabled = true", "[leader_election] api_url"),
        ('enabled = true\napi_url = "http://127.0.0.1:9"', "[leader_election] namespace"),
    ],
)
def test_run_outside_a_pod_says_what_to_set_and_exits_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    election: str,
    what_to_set: str,
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    monkeypatch.setenv("SYNCD_TEST_FINGERPRINT_KEY", KEY)
    token = tmp_path / "sa" / "token"  # no namespace file beside it: not a pod
    token.parent.mkdir()
    token.write_text("t")
    config = tmp_path / "syncd.toml"
    election += f'\ntoken_file = "{token}"'
    config.write_text(BASE + HA.format(state_path=tmp_path / "s.sqlite3", election=election))
    code, _, err = run_cli(capsys, "run", "--config", str(config))
    assert code == 2, err
    assert what_to_set in err
    assert "Traceback" not in err
