"""``sync.fingerprint_key``: value fingerprints keyed outside the state file.

Config (env/file only, never inline), the start-up read (length, errors without the value), and the
reconciler against in-memory fakes: fingerprints independent of the stored key, a quiet steady
state, and exactly one rewrite per script when the key is set, changed or removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.app.credentials import CredentialError
from syncd.app.service.wiring import fingerprint_key
from syncd.config import CredentialRef, Settings, parse_config
from syncd.engine.reconciler import Reconciler
from syncd.engine.report import Reason
from syncd.engine.state import StateStore
from syncd.errors import ConfigError
from tests.engine.conftest import CANARY
from tests.engine.fakes import FakeSource, FakeWorkers, keys_mapping, make_settings

KEY_A = b"fingerprint-key-a-0123456789abcdef0123456789"
KEY_B = b"fingerprint-key-b-fedcba9876543210fedcba9876"
ACCOUNT = "0123456789abcdef0123456789abcdef"
BASE = f"""
[vault]
address = "http://127.0.0.1:8200"
allow_inline_credentials = true
[cloudflare]
account_id = "{ACCOUNT}"
allow_inline_credentials = true
[cloudflare.auth]
api_token = {{ env = "CF_TOKEN" }}
[sync]
"""

SETTINGS = make_settings(
    [
        keys_mapping("to-a", "app", "script-a", {"k1": "ONE", "k2": "TWO"}),
        keys_mapping("to-b", "app", "script-b", {"k1": "ONE"}),
        keys_mapping("other", "other", "script-a", {"x": "OTHER"}),
    ]
)


# --- config and the start-up read ------------------------------------------------------------------


def test_fingerprint_key_defaults_to_the_state_stores_key() -> None:
    assert parse_config(BASE).sync.fingerprint_key is None
    assert fingerprint_key(parse_config(BASE)) is None


def test_fingerprint_key_accepts_env_and_file_references() -> None:
    from_env = parse_config(BASE + 'fingerprint_key = { env = "SYNCD_FINGERPRINT_KEY" }\n')
    from_file = parse_config(BASE + 'fingerprint_key = { file = "/etc/syncd/fingerprint-key" }\n')
    assert from_env.sync.fingerprint_key == CredentialRef(env="SYNCD_FINGERPRINT_KEY")
    assert from_file.sync.fingerprint_key == CredentialRef(file=Path("/etc/syncd/fingerprint-key"))


def test_an_inline_fingerprint_key_is_refused_even_where_inline_credentials_are_allowed() -> None:
    text = BASE + f'fingerprint_key = {{ value = "{KEY_A.decode()}" }}\n'
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "syncd.toml")
    (problem,) = raised.value.problems
    assert problem.key == "sync.fingerprint_key"
    assert "inline credentials are refused" in problem.message
    assert KEY_A.decode() not in str(raised.value)


def test_the_key_is_read_once_from_the_environment_as_utf8_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_FINGERPRINT_KEY", f"  {KEY_A.decode()}\n")
    settings = parse_config(BASE + 'fingerprint_key = { env = "SYNCD_FINGERPRINT_KEY" }\n')
    assert fingerprint_key(settings) == KEY_A


def test_a_key_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "fingerprint-key"
    path.write_bytes(KEY_B + b"\n")
    settings = parse_config(BASE + f'fingerprint_key = {{ file = "{path}" }}\n')
    assert fingerprint_key(settings) == KEY_B


def test_a_short_key_is_a_config_error_that_does_not_show_it(monkeypatch: pytest.MonkeyPatch) -> None:
    short = "short-key-canary-1234567"  # 24 bytes
    monkeypatch.setenv("SYNCD_FINGERPRINT_KEY", short)
    settings = parse_config(BASE + 'fingerprint_key = { env = "SYNCD_FINGERPRINT_KEY" }\n')
    with pytest.raises(CredentialError) as raised:
        fingerprint_key(settings)
    assert raised.value.exit_code == 2
    assert "env:SYNCD_FINGERPRINT_KEY" in str(raised.value)
    assert "at least 32 bytes" in str(raised.value)
    assert short not in f"{raised.value!s} {raised.value!r} {raised.value.problems!r}"


def test_an_unset_key_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNCD_FINGERPRINT_KEY", raising=False)
    settings = parse_config(BASE + 'fingerprint_key = { env = "SYNCD_FINGERPRINT_KEY" }\n')
    with pytest.raises(CredentialError, match="SYNCD_FINGERPRINT_KEY is not set"):
        fingerprint_key(settings)


# --- the reconciler ---------------------------------------------------------------------------------


class World:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.source = FakeSource()
        self.workers = FakeWorkers()
        self.workers.add_script("script-a")
        self.workers.add_script("script-b")
        self.source.put("app", {"k1": CANARY, "k2": "two"})
        self.source.put("other", {"x": "x"})
        self.state = StateStore.open(path)

    def reconciler(self, key: bytes | None, settings: Settings = SETTINGS) -> Reconciler:
        return Reconciler(settings, self.source, self.workers, self.state, clock=lambda: 1000.0, fingerprint_key=key)

    def fingerprints(self) -> dict[tuple[str, str], str | None]:
        return {(r.target.script, r.name): r.fingerprint for r in self.state.bindings()}

    def restart(self) -> None:
        self.state.close()
        self.state = StateStore.open(self.path)

    def cycle(self, key: bytes | None) -> tuple[list[tuple[str, str]], int]:
        """One cycle by a fresh reconciler: the (operation, script) of each write, and data reads."""
        self.source.calls.clear()
        self.workers.calls.clear()
        report = self.reconciler(key).reconcile()
        assert report.ok
        writes = sorted((c.operation, c.target.script) for c in self.workers.writes())
        return writes, self.source.count("read")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "state.sqlite3")
    yield w
    w.state.close()


ONE_BULK_PER_SCRIPT = [("bulk", "script-a"), ("bulk", "script-b")]


def test_an_external_key_records_fingerprints_other_than_the_stored_keys(world: World, tmp_path: Path) -> None:
    world.cycle(None)
    under_stored = world.fingerprints()
    world.cycle(KEY_A)
    under_external = world.fingerprints()

    assert under_external.keys() == under_stored.keys()
    assert all(under_external[k] != under_stored[k] for k in under_stored)
    # The stored key plays no part: another state file (another stored key) records the same ones.
    other = World(tmp_path / "other.sqlite3")
    try:
        other.cycle(KEY_A)
        assert other.fingerprints() == under_external
        assert other.state.hmac_key != world.state.hmac_key
    finally:
        other.state.close()


def test_an_unchanged_world_makes_no_cloudflare_call_under_an_external_key(world: World) -> None:
    assert world.cycle(KEY_A)[0] == ONE_BULK_PER_SCRIPT
    reconciler = world.reconciler(KEY_A)
    world.workers.calls.clear()
    world.source.calls.clear()
    assert reconciler.reconcile().ok
    assert world.workers.calls == []
    assert world.source.count("read") == 0
    world.restart()
    assert world.cycle(KEY_A) == ([], 0)


@pytest.mark.parametrize(
    ("before", "after"),
    [(None, KEY_A), (KEY_A, KEY_B), (KEY_A, None)],
    ids=["stored-to-external", "external-to-another", "external-to-stored"],
)
def test_switching_keys_rewrites_each_script_once_then_is_quiet(
    world: World, before: bytes | None, after: bytes | None
) -> None:
    world.cycle(before)
    assert world.cycle(before) == ([], 0)

    with capture_logs() as logs:
        report = world.reconciler(after).reconcile()
    assert report.ok
    assert sorted((c.operation, c.target.script) for c in world.workers.writes()) == ONE_BULK_PER_SCRIPT
    assert {c.reason for c in report.changes} == {Reason.CHANGED}
    assert len(report.changes) == 4  # every binding once
    assert world.cycle(after) == ([], 0)
    for key in (KEY_A, KEY_B):
        assert key.decode() not in repr(logs)


def test_the_external_key_appears_in_no_state_log_or_repr(world: World) -> None:
    with capture_logs() as logs:
        reconciler = world.reconciler(KEY_A)
        reconciler.reconcile()
    world.state.close()
    stored = world.path.read_bytes()
    world.state = StateStore.open(world.path)
    assert KEY_A not in stored
    assert KEY_A.decode() not in repr(logs)
    assert KEY_A.decode() not in f"{reconciler!r} {vars(reconciler)!r}"
