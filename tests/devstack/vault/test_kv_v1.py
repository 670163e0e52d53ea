"""KV v1 through hvac: read with the mount TTL, write, list, delete."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest


def test_write_read_carries_the_default_lease(root: hvac.Client) -> None:
    root.secrets.kv.v1.create_or_update_secret("svc/token", secret={"value": "abc"}, mount_point="kv")
    read = root.secrets.kv.v1.read_secret("svc/token", mount_point="kv")
    assert read["data"] == {"value": "abc"}
    assert read["lease_duration"] == 2764800
    assert read["mount_type"] == "kv"


def test_ttl_field_becomes_the_lease_duration(root: hvac.Client) -> None:
    root.secrets.kv.v1.create_or_update_secret("leased", secret={"value": "x", "ttl": "1h"}, mount_point="kv")
    assert root.secrets.kv.v1.read_secret("leased", mount_point="kv")["lease_duration"] == 3600


def test_overwrite_replaces_the_whole_map(root: hvac.Client) -> None:
    root.secrets.kv.v1.create_or_update_secret("x", secret={"a": "1", "b": "2"}, mount_point="kv")
    root.secrets.kv.v1.create_or_update_secret("x", secret={"a": "3"}, mount_point="kv")
    assert root.secrets.kv.v1.read_secret("x", mount_point="kv")["data"] == {"a": "3"}


def test_list_and_delete(root: hvac.Client) -> None:
    for path in ("dir/a", "dir/b", "dir/deeper/c"):
        root.secrets.kv.v1.create_or_update_secret(path, secret={"v": "1"}, mount_point="kv")
    assert root.secrets.kv.v1.list_secrets("dir", mount_point="kv")["data"]["keys"] == ["a", "b", "deeper/"]

    root.secrets.kv.v1.delete_secret("dir/a", mount_point="kv")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v1.read_secret("dir/a", mount_point="kv")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v1.list_secrets("empty", mount_point="kv")
