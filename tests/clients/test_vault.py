from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from syncd.clients.vault import VaultReader, build_hvac_client, parse_vault_time
from syncd.errors import (
    VaultAuthError,
    VaultError,
    VaultPermissionDenied,
    VaultSecretDeleted,
    VaultSecretNotFound,
    VaultUnavailable,
)
from syncd.model import KvVersion, VaultSecretRef
from tests.clients.conftest import CANARY_TOKEN, CANARY_VALUE, assert_error_clean, assert_no_canary
from tests.clients.fakevault import FakeVault, envelope, hvac_client

REF = VaultSecretRef("secret", "apps/billing")
V1_REF = VaultSecretRef("kv", "legacy/db")
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC).timestamp()


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    def observe(self, service: str, operation: str, outcome: str, code: str, seconds: float) -> None:
        self.calls.append((service, operation, outcome, code))


@pytest.fixture
def fake() -> FakeVault:
    return FakeVault()


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def reader(fake: FakeVault, rec: Recorder | None = None, **kw: Any) -> VaultReader:
    return VaultReader(
        hvac_client(fake, token=CANARY_TOKEN),
        observer=rec or Recorder(),
        clock=lambda: NOW,
        http=fake.transport(),
        **kw,
    )


def metadata(current: int, *, deletion_time: str = "", destroyed: bool = False) -> dict[str, Any]:
    versions = {
        str(v): {"created_time": f"2026-04-0{v}T10:00:00.123456789Z", "deletion_time": "", "destroyed": False}
        for v in range(1, current + 1)
    }
    versions[str(current)].update(deletion_time=deletion_time, destroyed=destroyed)
    return envelope(
        {
            "current_version": current,
            "oldest_version": 0,
            "created_time": "2026-04-01T10:00:00.123456789Z",
            "updated_time": "2026-04-01T10:00:00.123456789Z",
            "max_versions": 0,
            "cas_required": False,
            "delete_version_after": "0s",
            "custom_metadata": None,
            "versions": versions,
        }
    )


def data_body(version: int, values: dict[str, Any] | None, *, deletion_time: str = "", destroyed: bool = False) -> Any:
    return envelope(
        {
            "data": values,
            "metadata": {
                "created_time": "2026-04-03T10:00:00.5Z",
                "custom_metadata": None,
                "deletion_time": deletion_time,
                "destroyed": destroyed,
                "version": version,
            },
        }
    )


# -- mounts -------------------------------------------------------------------------------------


def test_kv_version_reads_mount_options_once_per_mount(fake: FakeVault) -> None:
    fake.on("GET", "sys/internal/ui/mounts/secret", (200, envelope({"type": "kv", "options": {"version": "2"}})))
    fake.on("GET", "sys/internal/ui/mounts/kv", (200, envelope({"type": "kv", "options": None})))
    r = reader(fake)
    assert r.kv_version("secret") is KvVersion.V2
    assert r.kv_version("secret") is KvVersion.V2
    assert r.kv_version("kv") is KvVersion.V1
    assert len(fake.calls("GET", "sys/internal/ui/mounts/secret")) == 1
    assert fake.requests[0].headers["X-Vault-Token"] == CANARY_TOKEN


def test_kv_version_refuses_a_non_kv_mount(fake: FakeVault) -> None:
    fake.on("GET", "sys/internal/ui/mounts/pki", (200, envelope({"type": "pki", "options": None})))
    with pytest.raises(VaultError, match="not a KV mount"):
        reader(fake).kv_version("pki")


def test_kv_version_errors_are_not_cached(fake: FakeVault) -> None:
    fake.on(
        "GET",
        "sys/internal/ui/mounts/secret",
        (403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}),
        (200, envelope({"type": "kv", "options": {"version": "2"}})),
    )
    r = reader(fake)
    with pytest.raises(VaultPermissionDenied, match="permission denied"):
        r.kv_version("secret")
    assert r.kv_version("secret") is KvVersion.V2


# -- version checks ------------------------------------------------------------------------------


def test_current_version_from_metadata(fake: FakeVault, rec: Recorder) -> None:
    fake.on("GET", "secret/metadata/apps/billing", (200, metadata(3)))
    info = reader(fake, rec).current_version(REF, KvVersion.V2)
    assert (info.version, info.deleted, info.destroyed) == (3, False, False)
    assert info.created_time == datetime(2026, 4, 3, 10, 0, 0, 123456, tzinfo=UTC)
    assert rec.calls == [("vault", "metadata_read", "ok", "200")]


def test_current_version_soft_deleted_in_the_past_is_reported(fake: FakeVault) -> None:
    fake.on("GET", "secret/metadata/apps/billing", (200, metadata(2, deletion_time="2026-04-30T00:00:00Z")))
    info = reader(fake).current_version(REF, KvVersion.V2)
    assert info.version == 2 and info.deleted and not info.destroyed


def test_current_version_deletion_in_the_future_is_not_deleted_yet(fake: FakeVault) -> None:
    fake.on("GET", "secret/metadata/apps/billing", (200, metadata(2, deletion_time="2026-05-02T00:00:00Z")))
    assert reader(fake).current_version(REF, KvVersion.V2).deleted is False


def test_current_version_destroyed_is_reported(fake: FakeVault) -> None:
    fake.on("GET", "secret/metadata/apps/billing", (200, metadata(4, destroyed=True)))
    info = reader(fake).current_version(REF, KvVersion.V2)
    assert info.destroyed and info.version == 4


def test_current_version_kv1_makes_no_request(fake: FakeVault) -> None:
    info = reader(fake).current_version(V1_REF, KvVersion.V1)
    assert info.version is None and info.kv_version is KvVersion.V1
    assert fake.requests == []


def test_current_version_missing_path(fake: FakeVault) -> None:
    fake.on("GET", "secret/metadata/apps/billing", (404, {"errors": []}))
    with pytest.raises(VaultSecretNotFound) as info:
        reader(fake).current_version(REF, KvVersion.V2)
    assert info.value.path == "secret/metadata/apps/billing"
    assert info.value.status == 404


# -- reads ---------------------------------------------------------------------------------------


def test_read_exact_version(fake: FakeVault) -> None:
    fake.on("GET", "secret/data/apps/billing", (200, data_body(3, {"api_key": CANARY_VALUE, "n": 5})))
    got = reader(fake).read(REF, KvVersion.V2, 3)
    assert fake.query_of(fake.requests[0])["version"] == ["3"]
    assert got.version == 3 and got.kv_version is KvVersion.V2
    assert got.data.text("api_key").reveal() == CANARY_VALUE
    assert got.data.raw("n") == 5
    assert got.created_time == datetime(2026, 4, 3, 10, 0, 0, 500000, tzinfo=UTC)
    assert_no_canary(got, got.data)


def test_read_soft_deleted_version_raises_deleted(fake: FakeVault) -> None:
    fake.on("GET", "secret/data/apps/billing", (404, data_body(2, None, deletion_time="2026-04-30T00:00:00Z")))
    with pytest.raises(VaultSecretDeleted, match="deleted"):
        reader(fake).read(REF, KvVersion.V2, 2)


def test_read_destroyed_version_raises_deleted(fake: FakeVault, rec: Recorder) -> None:
    fake.on("GET", "secret/data/apps/billing", (404, data_body(2, None, destroyed=True)))
    with pytest.raises(VaultSecretDeleted, match="destroyed"):
        reader(fake, rec).read(REF, KvVersion.V2, 2)
    assert rec.calls == [("vault", "data_read", "error", "404")]


def test_read_missing_path_or_pruned_version(fake: FakeVault) -> None:
    fake.on("GET", "secret/data/apps/billing", (404, {"errors": []}))
    with pytest.raises(VaultSecretNotFound):
        reader(fake).read(REF, KvVersion.V2, 9)


def test_read_kv1(fake: FakeVault) -> None:
    body = envelope({"password": CANARY_VALUE})
    body["lease_duration"] = 2764800
    fake.on("GET", "kv/legacy/db", (200, body))
    got = reader(fake).read(V1_REF, KvVersion.V1, None)
    assert got.version is None and got.kv_version is KvVersion.V1
    assert got.data.text("password").reveal() == CANARY_VALUE


def test_permission_denied(fake: FakeVault) -> None:
    fake.on("GET", "secret/data/apps/billing", (403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}))
    with pytest.raises(VaultPermissionDenied) as info:
        reader(fake).read(REF, KvVersion.V2, 1)
    assert "secret/data/apps/billing" in str(info.value)
    assert "permission denied" in str(info.value)
    assert_error_clean(info.value)


def test_403_with_an_invalid_own_token_is_an_auth_error(fake: FakeVault) -> None:
    fake.on("GET", "secret/metadata/apps/billing", (403, {"errors": ["permission denied"]}))
    with pytest.raises(VaultAuthError, match="token is missing or expired"):
        reader(fake, token_valid=lambda: False).current_version(REF, KvVersion.V2)


def test_401_is_an_auth_error(fake: FakeVault) -> None:
    fake.on("GET", "secret/metadata/apps/billing", (401, {"errors": ["missing client token"]}))
    with pytest.raises(VaultAuthError):
        reader(fake).current_version(REF, KvVersion.V2)


# -- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        (503, {"errors": ["Vault is sealed"]}),
        (500, {"errors": ["internal error"]}),
        (502, {"errors": ["upstream"]}),
        (429, {"errors": ['request path "secret/data/x": rate limit quota exceeded']}),
        (412, {"errors": ["required index state not present"]}),
        (504, {"errors": []}),
        requests.exceptions.ConnectionError("refused"),
        requests.exceptions.ReadTimeout("slow"),
    ],
)
def test_unavailable_is_retried_then_succeeds(fake: FakeVault, rec: Recorder, failure: Any) -> None:
    fake.on("GET", "secret/metadata/apps/billing", failure, (200, metadata(1)))
    assert reader(fake, rec).current_version(REF, KvVersion.V2).version == 1
    assert len(fake.requests) == 2
    assert [c[2] for c in rec.calls] == ["retry", "ok"]


def test_unavailable_gives_up_after_the_configured_attempts(fake: FakeVault, rec: Recorder) -> None:
    fake.on("GET", "secret/metadata/apps/billing", (503, {"errors": ["Vault is sealed"]}))
    with pytest.raises(VaultUnavailable, match="sealed") as info:
        reader(fake, rec, retry_attempts=3).current_version(REF, KvVersion.V2)
    assert len(fake.requests) == 3
    assert [c[2:] for c in rec.calls] == [("retry", "503"), ("retry", "503"), ("error", "503")]
    assert info.value.retryable


def test_connection_error_has_kind_not_details(fake: FakeVault, rec: Recorder) -> None:
    fake.on("GET", "secret/data/apps/billing", requests.exceptions.ConnectionError(f"boom {CANARY_TOKEN}"))
    with pytest.raises(VaultUnavailable, match="connection failed") as info:
        reader(fake, rec, retry_attempts=1).read(REF, KvVersion.V2, 1)
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert_error_clean(info.value)
    assert rec.calls == [("vault", "data_read", "error", "connection")]


def test_unknown_status_with_a_plain_hvac_client_is_treated_as_unavailable(fake: FakeVault) -> None:
    fake.on("GET", "secret/metadata/apps/billing", (504, {"errors": []}), (200, metadata(1)))
    r = VaultReader(hvac_client(fake, plain=True), clock=lambda: NOW, http=fake.transport())
    assert r.current_version(REF, KvVersion.V2).version == 1


@pytest.mark.parametrize("status", [400, 403, 404, 405])
def test_client_errors_are_not_retried(fake: FakeVault, status: int) -> None:
    fake.on("GET", "secret/metadata/apps/billing", (status, {"errors": ["no"]}))
    with pytest.raises(VaultError) as info:
        reader(fake).current_version(REF, KvVersion.V2)
    assert not isinstance(info.value, VaultUnavailable)
    assert len(fake.requests) == 1


# -- client factory and helpers -------------------------------------------------------------------


def test_build_hvac_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", CANARY_TOKEN)
    client = build_hvac_client(
        "https://vault.example:8200",
        namespace="team-a/",
        timeout=7.0,
        verify="/etc/ca.pem",
        client_cert=("/c.pem", "/k.pem"),
        pool_size=16,
    )
    assert client.url == "https://vault.example:8200"
    assert not client.token  # the environment is not consulted
    assert client.adapter.namespace == "team-a/"
    assert client.adapter._kwargs["timeout"] == 7.0
    session = client.session
    assert session.verify == "/etc/ca.pem" and session.cert == ("/c.pem", "/k.pem")
    adapter = session.get_adapter("https://vault.example:8200/")
    assert adapter._pool_maxsize == 16
    assert adapter.max_retries.total == 0


def test_parse_vault_time() -> None:
    assert parse_vault_time("2018-03-22T02:24:06.945319214Z") == datetime(2018, 3, 22, 2, 24, 6, 945319, tzinfo=UTC)
    assert parse_vault_time("2018-03-22T02:24:06Z") == datetime(2018, 3, 22, 2, 24, 6, tzinfo=UTC)
    assert parse_vault_time("2018-03-22T02:24:06.5+02:00") == datetime(2018, 3, 22, 0, 24, 6, 500000, tzinfo=UTC)
    assert parse_vault_time("") is None
    assert parse_vault_time(None) is None
    assert parse_vault_time("yesterday") is None
