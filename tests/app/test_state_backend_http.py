"""``open_configured_state`` (what the app's ``open_state`` calls) opens the kubernetes backend over
HTTP, through ``[leader_election]``'s API connection, keyed from outside."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.app.state_backend import open_configured_state
from syncd.config import parse_config
from syncd.devstack.kubernetes import SECRETS, KubernetesEmulator
from syncd.engine.state import MappingOutcome
from syncd.engine.state.kubernetes import KubernetesStateStore

NAMES = ("syncd-state-0", "syncd-state-1")
pytestmark = pytest.mark.integration

KEY = "wiring-fingerprint-key-0123456789abcdef"


@pytest.fixture
def kube() -> Iterator[KubernetesEmulator]:
    emulator = KubernetesEmulator(namespace="syncd").start()
    for name in NAMES:
        emulator.put_object(SECRETS, {"metadata": {"name": name}, "type": "Opaque"})
    yield emulator
    threading.Thread(target=emulator.stop, name="stop-emulator", daemon=True).start()


def test_the_kubernetes_backend_opens_through_the_leader_election_connection(
    kube: KubernetesEmulator, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text(kube.token)
    settings = parse_config(
        f"""
[vault]
address = "http://vault.invalid"
auth = {{ method = "token", token = {{ env = "VAULT_TOKEN" }} }}
[cloudflare]
account_id = "0123456789abcdef0123456789abcdef"
auth = {{ api_token = {{ env = "CF_TOKEN" }} }}
[sync]
fingerprint_key = {{ env = "SYNCD_TEST_FINGERPRINT_KEY" }}
[leader_election]
api_url = "{kube.url}"
namespace = "syncd"
[state]
backend = "kubernetes"
[state.kubernetes]
secret_count = 2
"""
    )
    # token_file set here, not in the TOML: the test is about the state, not about path parsing
    connection = settings.leader_election.model_copy(update={"token_file": tmp_path / "token"})
    settings = settings.model_copy(update={"leader_election": connection})
    with open_configured_state(settings, fingerprint_key=KEY.encode()) as state:
        assert isinstance(state, KubernetesStateStore)
        assert state.hmac_key == KEY.encode()
        state.record_mapping_results([MappingOutcome("edge", 1.0, "cfg", 4, True, True, None, None)])
    with open_configured_state(settings, exclusive=False, fingerprint_key=KEY.encode()) as reader:
        status = reader.mapping_status("edge")
        assert status is not None
        assert status.last_version == 4
