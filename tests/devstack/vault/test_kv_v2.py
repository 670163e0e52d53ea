"""KV v2 through hvac: versions, CAS, deletes, metadata, pruning, delete_version_after."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest

from syncd.devstack.vault import VaultEmulator


def test_write_then_read_returns_data_and_version_metadata(root: hvac.Client) -> None:
    written = root.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": "s3cret"})
    read = root.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)

    assert written["data"]["version"] == 1
    assert read["data"]["data"] == {"password": "s3cret"}
    assert read["data"]["metadata"]["version"] == 1
    assert read["data"]["metadata"]["deletion_time"] == ""
    assert read["data"]["metadata"]["created_time"].endswith("Z")
    assert read["mount_type"] == "kv"
    assert read["lease_duration"] == 0


def test_reading_an_older_version_by_number(root: hvac.Client) -> None:
    for value in ("one", "two", "three"):
        root.secrets.kv.v2.create_or_update_secret("rotating", secret={"v": value})

    old = root.secrets.kv.v2.read_secret_version("rotating", version=2, raise_on_deleted_version=True)
    latest = root.secrets.kv.v2.read_secret_version("rotating", raise_on_deleted_version=True)

    assert old["data"]["data"] == {"v": "two"}
    assert latest["data"]["metadata"]["version"] == 3


def test_missing_path_and_future_version_raise_invalid_path(root: hvac.Client) -> None:
    root.secrets.kv.v2.create_or_update_secret("present", secret={"a": "1"})

    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version("absent", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version("present", version=7, raise_on_deleted_version=True)


def test_cas_mismatch_and_cas_required_are_invalid_requests(root: hvac.Client) -> None:
    root.secrets.kv.v2.create_or_update_secret("guarded", secret={"a": "1"})

    with pytest.raises(hvac.exceptions.InvalidRequest, match="did not match the current version"):
        root.secrets.kv.v2.create_or_update_secret("guarded", secret={"a": "2"}, cas=0)
    ok = root.secrets.kv.v2.create_or_update_secret("guarded", secret={"a": "2"}, cas=1)
    assert ok["data"]["version"] == 2

    root.secrets.kv.v2.update_metadata("guarded", cas_required=True)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set parameter required"):
        root.secrets.kv.v2.create_or_update_secret("guarded", secret={"a": "3"})


def test_cas_zero_only_creates(root: hvac.Client) -> None:
    created = root.secrets.kv.v2.create_or_update_secret("fresh", secret={"a": "1"}, cas=0)
    assert created["data"]["version"] == 1
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.secrets.kv.v2.create_or_update_secret("fresh", secret={"a": "2"}, cas=0)


def test_soft_delete_hides_data_but_keeps_metadata_and_undelete_restores(root: hvac.Client) -> None:
    root.secrets.kv.v2.create_or_update_secret("app/key", secret={"k": "v"})
    root.secrets.kv.v2.delete_latest_version_of_secret("app/key")

    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version("app/key", raise_on_deleted_version=True)
    deleted = root.secrets.kv.v2.read_secret_version("app/key", raise_on_deleted_version=False)
    assert deleted["data"]["data"] is None
    assert deleted["data"]["metadata"]["deletion_time"] != ""

    root.secrets.kv.v2.undelete_secret_versions("app/key", versions=[1])
    restored = root.secrets.kv.v2.read_secret_version("app/key", raise_on_deleted_version=True)
    assert restored["data"]["data"] == {"k": "v"}


def test_destroyed_version_is_gone_for_good(root: hvac.Client) -> None:
    root.secrets.kv.v2.create_or_update_secret("doomed", secret={"k": "1"})
    root.secrets.kv.v2.create_or_update_secret("doomed", secret={"k": "2"})
    root.secrets.kv.v2.destroy_secret_versions("doomed", versions=[1])
    root.secrets.kv.v2.undelete_secret_versions("doomed", versions=[1])

    with pytest.raises(hvac.exceptions.InvalidPath) as raised:
        root.secrets.kv.v2.read_secret_version("doomed", version=1, raise_on_deleted_version=False)
    assert raised.value.json["data"]["data"] is None
    assert raised.value.json["data"]["metadata"]["destroyed"] is True
    metadata = root.secrets.kv.v2.read_secret_metadata("doomed")["data"]
    assert metadata["versions"]["1"]["destroyed"] is True
    assert metadata["versions"]["2"]["destroyed"] is False


def test_delete_specific_versions_leaves_the_others(root: hvac.Client) -> None:
    for value in "abc":
        root.secrets.kv.v2.create_or_update_secret("multi", secret={"v": value})
    root.secrets.kv.v2.delete_secret_versions("multi", versions=[1, 2])

    metadata = root.secrets.kv.v2.read_secret_metadata("multi")["data"]
    assert metadata["versions"]["1"]["deletion_time"] != ""
    assert metadata["versions"]["2"]["deletion_time"] != ""
    assert metadata["versions"]["3"]["deletion_time"] == ""
    assert root.secrets.kv.v2.read_secret_version("multi", raise_on_deleted_version=True)["data"]["data"] == {"v": "c"}


def test_metadata_reports_current_version_and_settings(root: hvac.Client) -> None:
    root.secrets.kv.v2.create_or_update_secret("meta", secret={"a": "1"})
    root.secrets.kv.v2.create_or_update_secret("meta", secret={"a": "2"})
    root.secrets.kv.v2.update_metadata(
        "meta", max_versions=5, delete_version_after="1h", custom_metadata={"owner": "platform"}
    )

    metadata = root.secrets.kv.v2.read_secret_metadata("meta")["data"]

    assert metadata["current_version"] == 2
    assert metadata["oldest_version"] == 0
    assert metadata["max_versions"] == 5
    assert metadata["delete_version_after"] == "1h0m0s"
    assert metadata["custom_metadata"] == {"owner": "platform"}
    assert sorted(metadata["versions"]) == ["1", "2"]
    read = root.secrets.kv.v2.read_secret_version("meta", raise_on_deleted_version=True)
    assert read["data"]["metadata"]["custom_metadata"] == {"owner": "platform"}


def test_delete_metadata_removes_every_version(root: hvac.Client) -> None:
    root.secrets.kv.v2.create_or_update_secret("bye", secret={"a": "1"})
    root.secrets.kv.v2.delete_metadata_and_all_versions("bye")

    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_metadata("bye")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version("bye", raise_on_deleted_version=False)


def test_list_shows_keys_and_folders_and_missing_folder_is_invalid_path(root: hvac.Client) -> None:
    for path in ("team/a", "team/b", "team/sub/c", "other"):
        root.secrets.kv.v2.create_or_update_secret(path, secret={"x": "1"})

    assert root.secrets.kv.v2.list_secrets("team")["data"]["keys"] == ["a", "b", "sub/"]
    assert root.secrets.kv.v2.list_secrets("")["data"]["keys"] == ["other", "team/"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.list_secrets("nothing-here")


def test_max_versions_prunes_the_oldest(root: hvac.Client) -> None:
    root.secrets.kv.v2.update_metadata("pruned", max_versions=2)
    for value in "abcd":
        root.secrets.kv.v2.create_or_update_secret("pruned", secret={"v": value})

    metadata = root.secrets.kv.v2.read_secret_metadata("pruned")["data"]
    assert sorted(metadata["versions"]) == ["3", "4"]
    assert metadata["oldest_version"] == 3
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version("pruned", version=1, raise_on_deleted_version=False)


def test_default_keeps_ten_versions(root: hvac.Client) -> None:
    for number in range(12):
        root.secrets.kv.v2.create_or_update_secret("many", secret={"n": str(number)})
    metadata = root.secrets.kv.v2.read_secret_metadata("many")["data"]
    assert len(metadata["versions"]) == 10
    assert metadata["oldest_version"] == 3


def test_mount_config_applies_max_versions_and_cas_required(root: hvac.Client) -> None:
    root.secrets.kv.v2.configure(max_versions=3, cas_required=True)
    config = root.secrets.kv.v2.read_configuration()["data"]
    assert config == {"cas_required": True, "delete_version_after": "0s", "max_versions": 3}

    with pytest.raises(hvac.exceptions.InvalidRequest, match="required"):
        root.secrets.kv.v2.create_or_update_secret("cfg", secret={"a": "1"})
    for version in range(5):
        root.secrets.kv.v2.create_or_update_secret("cfg", secret={"a": str(version)}, cas=version)
    assert sorted(root.secrets.kv.v2.read_secret_metadata("cfg")["data"]["versions"]) == ["3", "4", "5"]


def test_delete_version_after_expires_versions_by_the_emulator_clock(vault: VaultEmulator, root: hvac.Client) -> None:
    root.secrets.kv.v2.configure(delete_version_after="30s")
    written = root.secrets.kv.v2.create_or_update_secret("ephemeral", secret={"a": "1"})
    assert written["data"]["deletion_time"] != ""

    still_there = root.secrets.kv.v2.read_secret_version("ephemeral", raise_on_deleted_version=True)
    assert still_there["data"]["data"] == {"a": "1"}

    vault.state.clock.advance(31)
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version("ephemeral", raise_on_deleted_version=True)


def test_key_delete_version_after_overrides_mount(vault: VaultEmulator, root: hvac.Client) -> None:
    root.secrets.kv.v2.configure(delete_version_after="1h")
    root.secrets.kv.v2.update_metadata("short", delete_version_after="10s")
    root.secrets.kv.v2.create_or_update_secret("short", secret={"a": "1"})
    vault.state.clock.advance(11)
    deleted = root.secrets.kv.v2.read_secret_version("short", raise_on_deleted_version=False)
    assert deleted["data"]["data"] is None


def test_custom_mount_path_works_like_the_default(root: hvac.Client) -> None:
    root.sys.enable_secrets_engine(backend_type="kv", path="team-kv", options={"version": "2"})
    root.secrets.kv.v2.create_or_update_secret("x", secret={"a": "1"}, mount_point="team-kv")
    read = root.secrets.kv.v2.read_secret_version("x", mount_point="team-kv", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"a": "1"}
