"""The ``kubernetes`` state backend: chunks under the Secret limit, writes only for changes,
conflicts never overwritten, a new leader reads what the old one wrote, no value in any Secret.

Writes are counted on the fake API's request log (``FakeSecrets.calls``).
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import threading
from dataclasses import replace

import pytest
from structlog.testing import capture_logs

from syncd.app.service.logs import redact_processor
from syncd.engine.fingerprint import Fingerprinter
from syncd.engine.reconciler import Reconciler
from syncd.engine.report import Trigger
from syncd.engine.state import BindingRecord, MappingOutcome, StateStore
from syncd.engine.state.chunks import DATA_KEY, FORMAT, bucket_of
from syncd.engine.state.chunks import encode as encode_chunks
from syncd.engine.state.kubernetes import KubernetesStateStore
from syncd.engine.values import desired_bindings
from syncd.errors import KubernetesApiError, StateConflict, StateError
from syncd.model import Target
from tests.engine.conftest import ACCOUNT, CANARY, CANARY_2, REF, TARGET, leaks, mapping, secret
from tests.engine.fake_secrets import FakeSecrets
from tests.engine.fakes import FakeSource, FakeWorkers, keys_mapping, make_settings

KEY = b"fingerprint-key-canary-0123456789abcdef"
NAMES = tuple(f"syncd-state-{i}" for i in range(4))


def record(name: str, mapping_name: str = "edge", **changes: object) -> BindingRecord:
    base = BindingRecord(
        target=TARGET,
        name=name,
        mapping=mapping_name,
        ref=REF,
        vault_version=7,
        fingerprint=secrets.token_hex(32),
        shape="s" * 32,
        owned=True,
        pushed_at=1000.5,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def outcome(name: str, at: float, *, version: int = 7, pushed: bool = False) -> MappingOutcome:
    return MappingOutcome(name, at, "cfg", version, in_sync=True, pushed=pushed, error_code=None, error=None)


def open_store(api: FakeSecrets, names: tuple[str, ...] = NAMES, **kwargs: object) -> KubernetesStateStore:
    return KubernetesStateStore.open(api, names, hmac_key=KEY, **kwargs)  # type: ignore[arg-type]


def a_mapping_in_each_secret(count: int = len(NAMES)) -> list[str]:
    """One mapping name per Secret, so tests know where each record lands."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < count:
        found.setdefault(bucket_of(f"m{n}", count), f"m{n}")
        n += 1
    return [found[i] for i in range(count)]


def encode_chunk(records: list[BindingRecord]) -> bytes:
    return encode_chunks(records, ())


def document(api: FakeSecrets, name: str) -> dict[str, object]:
    blob = api.data_of(name, DATA_KEY)
    assert blob is not None
    loaded = json.loads(gzip.decompress(blob))
    assert isinstance(loaded, dict)
    return loaded


# --- writes proportional to changes ------------------------------------------------------------------


def test_an_unchanged_cycle_writes_nothing_and_a_rotation_rewrites_one_secret() -> None:
    api = FakeSecrets(names=NAMES)
    names = a_mapping_in_each_secret()
    with open_store(api) as store:
        store.record_bindings([record(f"B_{m}", m) for m in names])
        store.record_mapping_results([outcome(m, 100.0, pushed=True) for m in names])
        assert len(api.puts()) == len(NAMES)  # the first cycle writes each Secret once
        api.calls.clear()

        for at in (130.0, 160.0):  # unchanged cycles: only the attempt and success times move
            store.record_mapping_results([outcome(m, at) for m in names])
        assert api.puts() == []

        store.record_bindings([record(f"B_{names[2]}", names[2], vault_version=8)])  # a rotation of one mapping
        assert api.puts() == []  # batched until the cycle ends
        store.record_mapping_results([outcome(m, 190.0, version=8 if m == names[2] else 7) for m in names])
        assert [c.name for c in api.puts()] == [NAMES[2]]


def test_a_write_intent_is_written_before_record_bindings_returns() -> None:
    api = FakeSecrets(names=NAMES)
    with open_store(api) as store:
        store.record_bindings([record("NEW", pending=True, fingerprint=None, vault_version=None, pushed_at=None)])
        assert [c.name for c in api.puts()] == [NAMES[bucket_of("edge", len(NAMES))]]


def test_an_intent_that_cannot_be_written_is_not_recorded_so_the_call_is_not_made() -> None:
    api = FakeSecrets(names=NAMES)
    with open_store(api) as store:
        api.fail_next["PUT"] = KubernetesApiError("PUT: 503", status=503, api_reason="ServiceUnavailable")
        intent = record("NEW", pending=True, fingerprint=None, vault_version=None, pushed_at=None)
        with pytest.raises(StateError, match="cannot write state secret syncd/syncd-state-"):
            store.record_bindings([intent])
        assert store.bindings() == []
        store.record_bindings([intent])  # the API is back
        assert store.bindings() == [intent]


def test_a_reader_never_writes_not_even_on_close() -> None:
    api = FakeSecrets(names=NAMES)
    with open_store(api) as writer:
        writer.record_mapping_results([outcome("edge", 1.0)])
    api.calls.clear()
    with open_store(api, exclusive=False) as reader:
        assert reader.mapping_status("edge") is not None
    assert api.puts(status=None) == []


def test_close_writes_what_the_cycle_left_in_memory() -> None:
    api = FakeSecrets(names=NAMES)
    store = open_store(api)
    store.record_bindings([record("A")])  # confirmed records wait for the end of the cycle
    assert api.puts() == []
    store.close()
    assert len(api.puts()) == 1
    with open_store(api) as reopened:
        assert [r.name for r in reopened.bindings()] == ["A"]


# --- chunks ------------------------------------------------------------------------------------------


def test_records_past_one_secrets_size_spread_over_the_secrets_each_under_the_limit() -> None:
    api = FakeSecrets(names=NAMES)
    limit = 16 * 1024
    records = [record(f"K{i}", f"mapping-{i}") for i in range(600)]
    with open_store(api, max_secret_bytes=limit) as store:
        store.record_bindings(records)
        store.record_mapping_results([outcome(f"mapping-{i}", 5.0) for i in range(600)])
    sizes = [len(api.data_of(name, DATA_KEY) or b"") for name in NAMES]
    assert sum(sizes) > limit  # more than one Secret could hold
    assert all(0 < size <= limit for size in sizes)
    with open_store(api, max_secret_bytes=limit) as reopened:
        assert sorted(reopened.bindings(), key=lambda r: r.name) == sorted(records, key=lambda r: r.name)
        assert len(reopened.all_mapping_status()) == 600


def test_a_secret_that_would_pass_its_limit_is_not_written_and_the_error_names_it() -> None:
    api = FakeSecrets(names=NAMES[:1])
    with open_store(api, NAMES[:1], max_secret_bytes=4096) as store:
        store.record_bindings([record(f"K{i}") for i in range(200)])
        with pytest.raises(StateError, match=r"syncd/syncd-state-0 would hold \d+ bytes, over the 4096 allowed"):
            store.record_mapping_results([outcome("edge", 1.0)])
        assert api.puts(status=None) == []
        store.forget_bindings(TARGET, [f"K{i}" for i in range(10, 200)])
        store.record_mapping_results([outcome("edge", 2.0)])  # small enough again: written
    assert len(api.puts()) == 1


def test_the_secret_keeps_what_the_manifests_gave_it() -> None:
    api = FakeSecrets(names=NAMES)
    with open_store(api) as store:
        store.record_mapping_results([outcome(m, 1.0) for m in a_mapping_in_each_secret()])
    for name in NAMES:
        stored = api.objects[name]
        assert stored["metadata"]["labels"] == {"app.kubernetes.io/name": "syncd"}
        assert (stored["type"], stored["kind"]) == ("Opaque", "Secret")
        assert document(api, name)["format"] == FORMAT


def test_a_new_secret_count_moves_records_to_their_new_secret_and_keeps_each_once() -> None:
    api = FakeSecrets(names=tuple(f"syncd-state-{i}" for i in range(8)))
    records = [record(f"K{i}", f"mapping-{i}") for i in range(40)]
    with open_store(api, NAMES[:2]) as small:
        small.record_bindings(records)
        small.record_mapping_results([outcome(f"mapping-{i}", 1.0) for i in range(40)])
    eight = tuple(f"syncd-state-{i}" for i in range(8))
    with open_store(api, eight) as grown:
        assert sorted(grown.bindings(), key=lambda r: r.name) == sorted(records, key=lambda r: r.name)
        grown.record_mapping_results([])  # the first flush moves them
    for index, name in enumerate(eight):
        rows = document(api, name)["bindings"] if api.data_of(name, DATA_KEY) else []
        assert isinstance(rows, list)
        assert all(bucket_of(row[4], 8) == index for row in rows), name
    with open_store(api, eight) as reread:
        assert len(reread.bindings()) == 40


# --- other writers -----------------------------------------------------------------------------------


def test_a_409_from_a_concurrent_writer_is_a_state_conflict_and_nothing_is_overwritten() -> None:
    api = FakeSecrets(names=NAMES)
    home = NAMES[bucket_of("edge", len(NAMES))]
    with open_store(api) as store:
        store.record_mapping_results([outcome("edge", 1.0)])
        api.touch(home)  # another replica (or a person) wrote it meanwhile
        theirs = json.dumps(api.objects[home], sort_keys=True)
        told = threading.Event()
        store.on_conflict = told.set
        with (
            capture_logs() as logs,
            pytest.raises(StateConflict, match=f"state secret syncd/{home} was changed by another writer"),
        ):
            store.record_mapping_results([outcome("edge", 2.0, version=8)])
        [conflict] = [redact_processor(None, "error", e) for e in logs if e["event"] == "state.conflict"]
        assert conflict["where"] == f"syncd/{home}"  # as the log pipeline writes it: not masked
        assert told.wait(timeout=10)
        assert json.dumps(api.objects[home], sort_keys=True) == theirs
        assert store.fenced
        with pytest.raises(StateConflict, match="writes no more"):
            store.record_bindings([record("LATER", mapping_name="other")])
        api.calls.clear()
    assert api.puts(status=None) == []  # close wrote nothing either


def test_a_new_leader_reads_exactly_what_the_old_one_wrote() -> None:
    api = FakeSecrets(names=NAMES)
    records = [record(f"K{i}", f"mapping-{i % 7}") for i in range(30)]
    records.append(record("INTENT", "mapping-3", pending=True, fingerprint=None, vault_version=None, pushed_at=None))
    with open_store(api) as old:
        old.record_bindings(records)
        old.record_mapping_results([outcome(f"mapping-{i}", 10.0 + i, version=i) for i in range(7)])
        old.remove_mapping_status("mapping-6")
        old.forget_bindings(TARGET, ["K6", "K13"])
        statuses = old.all_mapping_status()
        bindings = old.bindings()
    with open_store(api) as new:
        assert new.bindings() == bindings
        assert new.all_mapping_status() == statuses
        assert new.mapping_names() == {f"mapping-{i}" for i in range(7)}


def test_reload_takes_over_from_what_another_writer_left() -> None:
    api = FakeSecrets(names=NAMES)
    first, second = open_store(api), open_store(api)
    first.record_mapping_results([outcome("edge", 1.0)])
    with pytest.raises(StateConflict):
        second.record_mapping_results([outcome("edge", 2.0, version=9)])
    first.close()
    second.reload()  # it is the leader now
    assert second.mapping_status("edge") is not None
    assert second.mapping_status("edge").last_version == 7  # type: ignore[union-attr]
    second.record_mapping_results([outcome("edge", 3.0, version=9)])
    second.close()
    with open_store(api) as third:
        assert third.mapping_status("edge").last_version == 9  # type: ignore[union-attr]


# --- errors naming what is wrong ---------------------------------------------------------------------


def test_a_missing_secret_is_an_error_naming_it_and_the_manifests() -> None:
    api = FakeSecrets(names=NAMES[:3])
    with pytest.raises(StateError, match=r"state secret syncd/syncd-state-3 does not exist: the manifests create"):
        open_store(api)


def test_a_forbidden_secret_names_the_role_it_needs() -> None:
    api = FakeSecrets(names=NAMES)
    api.fail_next["GET"] = KubernetesApiError("GET: 403", status=403, api_reason="Forbidden")
    with pytest.raises(StateError, match="forbidden; syncd's Role needs get and update on secrets"):
        open_store(api)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not gzip", "state.json.gz is damaged"),
        (gzip.compress(b"[1, 2]"), "is not syncd state"),
        (gzip.compress(json.dumps({"format": "syncd-state/99"}).encode()), "format 'syncd-state/99'"),
    ],
)
def test_a_damaged_or_newer_secret_is_refused_naming_it(data: bytes, message: str) -> None:
    api = FakeSecrets(names=NAMES)
    api.create(NAMES[1], {DATA_KEY: data})
    with pytest.raises(StateError, match=f"syncd/syncd-state-1.*{message}"):
        open_store(api)


# --- no value, no key --------------------------------------------------------------------------------


def test_no_value_and_no_fingerprint_key_reach_any_secret() -> None:
    api = FakeSecrets(names=NAMES)
    key_canary = base64.b64encode(CANARY_2.encode() * 2).decode()
    m = mapping(
        secret_text={"keys": {"api_key": "API_KEY"}},
        secret_key=[
            {
                "vault_key": "signing_key",
                "binding": "SIGNING_KEY",
                "format": "raw",
                "algorithm": {"name": "HMAC", "hash": "SHA-256"},
                "usages": ["sign"],
            }
        ],
    )
    fingerprinter = Fingerprinter(KEY)
    with open_store(api) as store:
        for version, value in ((7, CANARY), (8, CANARY + "-rotated")):
            wanted = desired_bindings(m, TARGET, secret({"api_key": value, "signing_key": key_canary}, version))
            fingerprints = {b.name: fingerprinter.of(b.body) for b in wanted}
            store.record_bindings(
                [
                    BindingRecord(b.target, b.name, b.mapping, REF, version, fingerprints[b.name], b.shape(), True, 1.0)
                    for b in wanted
                ]
            )
            store.record_mapping_results([outcome("edge", float(version), version=version, pushed=True)])
    raw = json.dumps(api.objects).encode()
    opened = b"".join(gzip.decompress(api.data_of(n, DATA_KEY) or gzip.compress(b"")) for n in NAMES)
    canaries = (CANARY, CANARY_2, key_canary, KEY.decode(), base64.b64encode(KEY).decode(), KEY.hex())
    assert leaks(raw + opened, canaries) == []


# --- the engine on this backend ----------------------------------------------------------------------


def test_the_reconciler_on_this_backend_writes_no_secret_in_an_unchanged_cycle() -> None:
    api = FakeSecrets(names=NAMES)
    source, workers = FakeSource(), FakeWorkers()
    workers.add_script("script-a")
    source.put("app", {"k1": CANARY, "k2": "two"})
    source.put("other", {"x": "x"})
    settings = make_settings(
        [
            keys_mapping("to-a", "app", "script-a", {"k1": "ONE", "k2": "TWO"}),
            keys_mapping("other", "other", "script-a", {"x": "OTHER"}),
        ]
    )
    now = [1000.0]
    with open_store(api) as state:
        reconciler = Reconciler(settings, source, workers, state, clock=lambda: now[0], fingerprint_key=KEY)
        first = reconciler.reconcile(trigger=Trigger.STARTUP)
        assert not any(r.failed for r in first.results)
        assert api.puts() != []
        api.calls.clear()
        now[0] += 30
        reconciler.reconcile(trigger=Trigger.INTERVAL)
        assert api.puts() == []
        source.put("app", {"k1": CANARY_2, "k2": "two"})
        now[0] += 30
        reconciler.reconcile(trigger=Trigger.INTERVAL)
        assert [c.name for c in api.puts()] == [NAMES[bucket_of("to-a", len(NAMES))]]
    with open_store(api) as restarted:  # the next leader: nothing to write to Cloudflare
        workers.calls.clear()
        again = Reconciler(settings, source, workers, restarted, clock=lambda: now[0], fingerprint_key=KEY)
        again.reconcile(trigger=Trigger.STARTUP)
        assert workers.writes() == []


def test_binding_targets_in_dispatch_namespaces_keep_apart() -> None:
    api = FakeSecrets(names=NAMES)
    inside = Target(ACCOUNT, TARGET.script, "customers")
    with open_store(api) as store:
        store.record_bindings([record("A"), record("A", target=inside)])
    with open_store(api) as reopened:
        assert [r.target for r in reopened.bindings()] == [TARGET, inside]


def test_a_move_cut_short_between_its_two_writes_loses_nothing_and_keeps_one_copy() -> None:
    names = NAMES[:2]
    first, second = a_mapping_in_each_secret(2)
    api = FakeSecrets(names=names)
    with open_store(api, names) as store:
        store.record_bindings([record("MOVING", first)])
        store.record_mapping_results([])
        api.calls.clear()
        api.puts_before_failure = 2  # the new home and the old one with the record kept, then nothing
        store.record_bindings([record("MOVING", second, vault_version=9)])  # the binding changes mapping
        with pytest.raises(StateError):
            store.record_mapping_results([])
        assert len(api.puts()) == 2
        with open_store(api, names, exclusive=False) as crashed_here:  # a new leader reading now
            (seen,) = crashed_here.bindings()
            assert (seen.mapping, seen.vault_version) == (second, 9)
        api.puts_before_failure = None
    with open_store(api, names) as after:
        (seen,) = after.bindings()
        assert seen.mapping == second
    for index, name in enumerate(names):
        rows = document(api, name)["bindings"]
        assert isinstance(rows, list)
        assert [row[4] for row in rows] == ([second] if index == bucket_of(second, 2) else []), name


def test_a_stale_copy_outside_its_home_secret_loses_to_the_home_copy_and_is_removed() -> None:
    names = NAMES[:2]
    home_mapping = a_mapping_in_each_secret(2)[1]
    stale, fresh = record("K", home_mapping, vault_version=1), record("K", home_mapping, vault_version=2)
    api = FakeSecrets(names=())
    api.create(names[0], {DATA_KEY: encode_chunk([stale])})  # left by a move cut short
    api.create(names[1], {DATA_KEY: encode_chunk([fresh])})
    with open_store(api, names) as store:
        assert store.bindings() == [fresh]
        store.record_mapping_results([])  # the first write cleans up
    assert document(api, names[0])["bindings"] == []
    with open_store(api, names) as reread:
        assert reread.bindings() == [fresh]


def test_a_replica_that_takes_over_reads_what_the_previous_leader_wrote_since() -> None:
    names = ("syncd-state-0",)
    api = FakeSecrets(names=names)
    follower = KubernetesStateStore.open(api, names, hmac_key=KEY)  # opened at start, before it leads
    with KubernetesStateStore.open(api, names, hmac_key=KEY) as leader:
        leader.record_mapping_results([MappingOutcome("edge", 1.0, "cfg", 3, True, True, None, None)])
    assert follower.mapping_status("edge") is None
    follower.reload()  # what the service does when this replica takes the Lease
    assert follower.mapping_status("edge") is not None
    follower.close()
    with StateStore.open(":memory:") as sqlite:
        sqlite.reload()  # one writer by its lock: nothing to do
