"""The ``kubernetes`` state backend over HTTP against the Kubernetes API emulator.

syncd's token has only what the ``ha`` Role gives it (``get`` and ``update`` on the state Secrets by
name); the Secrets are created beside it, as the manifests do. Writes are counted on the emulator's
own request log; the other writer is the official ``kubernetes`` client.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client

from syncd.clients.kubernetes import KubernetesEndpoint, SecretsClient
from syncd.devstack.kubernetes import SECRETS, KubernetesEmulator, Rule
from syncd.engine.reconciler import Reconciler
from syncd.engine.report import Trigger
from syncd.engine.state import BindingRecord, MappingOutcome
from syncd.engine.state.chunks import DATA_KEY, bucket_of
from syncd.engine.state.kubernetes import KubernetesStateStore
from syncd.errors import StateConflict, StateError
from tests.engine.conftest import CANARY, CANARY_2, REF, TARGET, leaks
from tests.engine.fakes import FakeSource, FakeWorkers, keys_mapping, make_settings

NAMESPACE = "syncd"
NAMES = tuple(f"syncd-state-{i}" for i in range(4))
KEY = b"http-fingerprint-key-canary-0123456789"
ROLE = (Rule(verbs=("get", "update"), resources=("secrets",), api_groups=("",), resource_names=NAMES),)


@pytest.fixture
def kube() -> Iterator[KubernetesEmulator]:
    emulator = KubernetesEmulator(namespace=NAMESPACE).start()
    for name in NAMES:
        emulator.put_object(SECRETS, {"metadata": {"name": name, "labels": {"app": "syncd"}}, "type": "Opaque"})
    yield emulator
    threading.Thread(target=emulator.stop, name="stop-emulator", daemon=True).start()


@pytest.fixture
def token(kube: KubernetesEmulator) -> str:
    return kube.add_token(f"system:serviceaccount:{NAMESPACE}:syncd", ROLE)


def open_store(kube: KubernetesEmulator, token: str, *, exclusive: bool = True) -> KubernetesStateStore:
    api = SecretsClient(KubernetesEndpoint(kube.url, NAMESPACE, token=lambda: token, timeout_seconds=5.0))
    return KubernetesStateStore.open(api, NAMES, hmac_key=KEY, exclusive=exclusive, on_close=api.close)


def puts(kube: KubernetesEmulator) -> list[str]:
    logged = httpx.get(f"{kube.url}/__devstack/requests", timeout=5).json()["requests"]
    return [r["path"].rsplit("/", 1)[1] for r in logged if r["method"] == "PUT" and r["status"] == 200]


def clear_log(kube: KubernetesEmulator) -> None:
    httpx.delete(f"{kube.url}/__devstack/requests", timeout=5).raise_for_status()


def outcome(name: str, at: float, version: int = 1) -> MappingOutcome:
    return MappingOutcome(name, at, "cfg", version, in_sync=True, pushed=False, error_code=None, error=None)


def test_the_engine_writes_no_secret_in_an_unchanged_cycle_and_one_for_a_rotation(
    kube: KubernetesEmulator, token: str
) -> None:
    source, workers = FakeSource(), FakeWorkers()
    workers.add_script("script-a")
    source.put("app", {"k1": CANARY})
    source.put("other", {"x": "x"})
    settings = make_settings(
        [keys_mapping("to-a", "app", "script-a", {"k1": "ONE"}), keys_mapping("other", "other", "script-a", {"x": "X"})]
    )
    now = [1000.0]
    with open_store(kube, token) as state:
        reconciler = Reconciler(settings, source, workers, state, clock=lambda: now[0], fingerprint_key=KEY)
        reconciler.reconcile(trigger=Trigger.STARTUP)
        assert puts(kube) != []
        clear_log(kube)
        for _ in range(3):
            now[0] += 30
            reconciler.reconcile(trigger=Trigger.INTERVAL)
        assert puts(kube) == []
        source.put("app", {"k1": CANARY_2})
        reconciler.reconcile(trigger=Trigger.INTERVAL)
        assert puts(kube) == [NAMES[bucket_of("to-a", len(NAMES))]]
    with open_store(kube, token) as next_leader:
        workers.calls.clear()
        Reconciler(settings, source, workers, next_leader, fingerprint_key=KEY).reconcile(trigger=Trigger.STARTUP)
        assert workers.writes() == []  # it read what the old leader wrote: nothing to redo
    secrets_seen = json.dumps([kube.secret(n) for n in NAMES]).encode()
    opened = b"".join(
        gzip.decompress(base64.b64decode(kube.secret(n)["data"][DATA_KEY])) for n in NAMES if "data" in kube.secret(n)
    )
    canaries = (CANARY, CANARY_2, KEY.decode(), base64.b64encode(KEY).decode(), KEY.hex())
    assert leaks(secrets_seen + opened, canaries) == []


def test_a_concurrent_writer_gets_a_state_conflict_and_its_change_stays(kube: KubernetesEmulator, token: str) -> None:
    home = NAMES[bucket_of("edge", len(NAMES))]
    with open_store(kube, token) as store:
        store.record_mapping_results([outcome("edge", 1.0)])
        configuration = client.Configuration(
            host=kube.url, api_key={"BearerToken": kube.token}, api_key_prefix={"BearerToken": "Bearer"}
        )
        with client.ApiClient(configuration) as api_client:  # a person with kubectl, or another replica
            core = client.CoreV1Api(api_client)
            core.patch_namespaced_secret(home, NAMESPACE, {"metadata": {"annotations": {"touched": "yes"}}})
        theirs = kube.secret(home)
        with pytest.raises(StateConflict, match=f"state secret {NAMESPACE}/{home} was changed by another writer"):
            store.record_mapping_results([outcome("edge", 2.0, version=2)])
        assert kube.secret(home) == theirs
    assert kube.secret(home) == theirs  # closing a fenced store writes nothing


def test_a_new_process_reads_exactly_the_records_the_old_one_wrote(kube: KubernetesEmulator, token: str) -> None:
    records = [
        BindingRecord(TARGET, f"K{i}", f"mapping-{i % 5}", REF, i, f"{i:064x}", "s" * 32, i % 2 == 0, 10.0 + i)
        for i in range(40)
    ]
    with open_store(kube, token) as old:
        old.record_bindings(records)
        old.record_mapping_results([outcome(f"mapping-{i}", 5.0 + i, version=i) for i in range(5)])
        bindings, statuses = old.bindings(), old.all_mapping_status()
    with open_store(kube, token, exclusive=False) as reader:
        assert (reader.bindings(), reader.all_mapping_status()) == (bindings, statuses)


def test_a_missing_secret_and_a_role_without_update_are_named(kube: KubernetesEmulator) -> None:
    narrow = kube.add_token("system:serviceaccount:syncd:narrow", (Rule(("get",), ("secrets",), ("",), NAMES),))
    store = open_store(kube, narrow)
    with pytest.raises(StateError, match="forbidden; syncd's Role needs get and update on secrets with resourceNames"):
        store.record_mapping_results([outcome("edge", 1.0)])
    with pytest.raises(StateError, match="forbidden"):
        store.close()  # it tries once more what is still unwritten, and says so
    other = tuple(f"other-{i}" for i in range(2))
    token = kube.add_token("system:serviceaccount:syncd:all")
    api = SecretsClient(KubernetesEndpoint(kube.url, NAMESPACE, token=lambda: token, timeout_seconds=5.0))
    with pytest.raises(StateError, match=f"state secret {NAMESPACE}/other-0 does not exist"):
        KubernetesStateStore.open(api, other, hmac_key=KEY)
    api.close()
