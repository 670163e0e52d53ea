"""Choosing the state backend from ``[state]`` (``syncd.app.state_backend``) and the config rules for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.app.state_backend import open_configured_state
from syncd.config import parse_config
from syncd.engine.state import StateStore
from syncd.engine.state.kubernetes import KubernetesStateStore
from syncd.errors import ConfigError, KubernetesNotInCluster, StateError
from tests.engine.fake_secrets import FakeSecrets

BASE = """
[vault]
address = "http://vault.invalid"
auth = { method = "token", token = { env = "VAULT_TOKEN" } }
[cloudflare]
account_id = "0123456789abcdef0123456789abcdef"
auth = { api_token = { env = "CF_TOKEN" } }
"""
KEY = b"k" * 32


def test_sqlite_stays_the_default(tmp_path: Path) -> None:
    settings = parse_config(BASE + f'[sync]\nstate_path = "{tmp_path / "s.db"}"\n')
    assert settings.state.backend == "sqlite"
    with open_configured_state(settings) as store:
        assert isinstance(store, StateStore)


def test_kubernetes_without_an_external_fingerprint_key_is_a_config_error_naming_file_and_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + '[state]\nbackend = "kubernetes"\n', "/etc/syncd/config.toml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.key) == ("/etc/syncd/config.toml", "sync.fingerprint_key")
    assert 'state.backend = "kubernetes" needs an external fingerprint key' in problem.message


def test_kubernetes_settings_name_the_secrets_and_open_them() -> None:
    settings = parse_config(
        BASE
        + '[sync]\nfingerprint_key = { env = "SYNCD_FINGERPRINT_KEY" }\n'
        + '[state]\nbackend = "kubernetes"\n[state.kubernetes]\nsecret_name_prefix = "ha-state"\nsecret_count = 2\n'
    )
    assert settings.state.kubernetes.secret_names() == ["ha-state-0", "ha-state-1"]
    api = FakeSecrets(namespace="ops", names=("ha-state-0", "ha-state-1"))
    with open_configured_state(settings, fingerprint_key=KEY, secrets_api=api) as store:
        assert isinstance(store, KubernetesStateStore)
        assert store.location == "secrets ops/ha-state-0..ha-state-1"
        assert store.hmac_key == KEY
    with pytest.raises(StateError, match=r"needs sync\.fingerprint_key"):
        open_configured_state(settings, secrets_api=api)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("secret_count = 0", "state.kubernetes.secret_count"),
        ('secret_name_prefix = "Not_DNS"', "state.kubernetes.secret_name_prefix"),
        ("max_secret_bytes = 1048576", "state.kubernetes.max_secret_bytes"),
        ("surprise = 1", "state.kubernetes.surprise"),
    ],
)
def test_bad_kubernetes_state_settings_name_their_key(table: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + f"[state.kubernetes]\n{table}\n")
    assert [p.key for p in caught.value.problems] == [key]


def test_outside_a_pod_without_api_url_the_state_cannot_open_and_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings = parse_config(
        BASE + '[sync]\nfingerprint_key = { env = "K" }\n[state]\nbackend = "kubernetes"\n', "config.toml"
    )
    unset = r"KUBERNETES_SERVICE_HOST/PORT unset\): set \[leader_election\] api_url"
    with pytest.raises(KubernetesNotInCluster, match=unset):
        open_configured_state(settings, fingerprint_key=KEY)  # exit code 2: a setting is missing
