"""Settings validation, in-cluster configuration, token rotation, MicroTime."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.app.leadership import (
    LeaderElector,
    Leadership,
    LeaseApi,
    LeaseRecord,
    SoleWriter,
    build_elector,
    build_leadership,
    default_identity,
)
from syncd.app.leadership.record import format_microtime
from syncd.clients.kubernetes import KubernetesApi, KubernetesEndpoint, TokenFile, in_cluster_url
from syncd.config import parse_config
from syncd.config.leader import LeaderElectionSettings
from syncd.devstack.kubernetes import KubernetesEmulator
from syncd.errors import ConfigError, KubernetesNotInCluster
from tests.core.test_config import BASE

HA = '\n[state]\nbackend = "kubernetes"\n\n[sync]\nfingerprint_key = { env = "SYNCD_FINGERPRINT_KEY" }\n'


def test_leader_election_section_loads_with_client_go_defaults() -> None:
    settings = parse_config(BASE + HA + '\n[leader_election]\nenabled = true\nnamespace = "syncd"\n')
    election = settings.leader_election
    assert election.enabled and election.lease_name == "syncd-leader"
    assert (election.lease_duration_seconds, election.renew_deadline_seconds, election.retry_period_seconds) == (
        15.0,
        10.0,
        2.0,
    )
    assert not parse_config(BASE).leader_election.enabled


def test_leader_election_on_a_sqlite_state_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + "\n[leader_election]\nenabled = true\n", "syncd.toml")
    assert 'leader election needs state.backend = "kubernetes"' in str(info.value)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("renew_deadline_seconds = 15", "renew_deadline_seconds (15) must be less than lease_duration_seconds (15)"),
        ("retry_period_seconds = 10", "retry_period_seconds (10) must be less than renew_deadline_seconds (10)"),
        ('lease_name = "Not A Name"', "lease_name"),
        ("surprise = 1", "surprise"),
    ],
)
def test_bad_leader_election_settings_are_named(section: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + f"\n[leader_election]\n{section}\n", "syncd.toml")
    text = "\n".join(str(p) for p in info.value.problems)
    assert "leader_election" in text and expected in text


def test_in_cluster_url_from_the_service_environment() -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster_url(env) == "https://10.0.0.1:443"
    assert in_cluster_url({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}) == (
        "https://[fd00::1]:443"
    )
    with pytest.raises(KubernetesNotInCluster, match=r"set \[leader_election\] api_url") as info:
        in_cluster_url({})
    assert info.value.exit_code == 2


def test_identity_is_the_pod_name_else_the_host_name() -> None:
    assert default_identity({"POD_NAME": "syncd-7d9f-abc"}) == "syncd-7d9f-abc"
    assert default_identity({})


def test_a_rotated_token_is_read_again(tmp_path: Path) -> None:
    with KubernetesEmulator(namespace="syncd") as kube:
        first, second = kube.add_token("u:first"), kube.add_token("u:second")
        token_file = tmp_path / "token"
        token_file.write_text(first + "\n")
        tokens = TokenFile(token_file)
        api = LeaseApi(KubernetesApi(KubernetesEndpoint(kube.url, "syncd", tokens, timeout_seconds=5)))
        assert api.get("absent") is None
        kube.revoke_token(first)
        token_file.write_text(second + "  \n")
        assert api.get("absent") is None  # would be 401 with the old token
        assert tokens() == second
        assert second not in repr(tokens)
        api.close()


def test_build_elector_from_settings_reads_the_service_account_files(tmp_path: Path) -> None:
    with KubernetesEmulator(namespace="team") as kube:
        (tmp_path / "token").write_text(kube.token)
        (tmp_path / "namespace").write_text("team\n")
        settings = LeaderElectionSettings(
            enabled=True, api_url=kube.url, token_file=tmp_path / "token", ca_file=None, identity="pod-x"
        )
        elector = build_elector(settings)
        elector.step()
        assert elector.is_leader and elector.identity == "pod-x"
        assert kube.lease("syncd-leader", "team")["spec"]["holderIdentity"] == "pod-x"
        elector.stop()
        assert "holderIdentity" not in kube.lease("syncd-leader", "team")["spec"]


def test_microtime_always_has_six_fractional_digits() -> None:
    assert format_microtime(datetime(2026, 11, 30, 5, 0, 0, tzinfo=UTC)) == "2026-11-30T05:00:00.000000Z"
    record = LeaseRecord("a", 15, None, datetime(2026, 1, 1, tzinfo=UTC), 0)
    assert record.spec()["renewTime"] == "2026-01-01T00:00:00.000000Z"


def test_without_leader_election_the_process_is_the_sole_writer_until_stopped() -> None:
    sole = build_leadership(LeaderElectionSettings(), env={"POD_NAME": "syncd-0"})
    assert isinstance(sole, SoleWriter)
    sole.start()
    assert sole.is_leader and sole.can_write(time.monotonic() + 3600) and sole.leader_identity == "syncd-0"
    sole.stop()
    assert not sole.is_leader and not sole.can_write(time.monotonic()) and sole.finished


def test_with_leader_election_enabled_it_is_an_elector(tmp_path: Path) -> None:
    settings = LeaderElectionSettings(
        enabled=True, api_url="http://127.0.0.1:9", namespace="syncd", token_file=tmp_path / "token", ca_file=None
    )
    elector: Leadership = build_leadership(settings, env={})
    assert isinstance(elector, LeaderElector) and not elector.is_leader
