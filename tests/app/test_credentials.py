"""Credential references: env read at call time, files re-read on rotation, errors without values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.app.credentials import CredentialError, credential_from, read_token_file
from syncd.config import CredentialRef
from syncd.errors import ConfigError

CANARY = "canary-cred-7c1d4e"
CANARY_NEW = "canary-cred-rotated-91aa"


def _leaks(text: str) -> bool:
    return CANARY in text or CANARY_NEW in text


def test_env_credential_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_TEST_TOKEN", CANARY)
    cred = credential_from(CredentialRef(env="SYNCD_TEST_TOKEN"), key="cloudflare.auth.api_token")
    assert cred().reveal() == CANARY
    monkeypatch.setenv("SYNCD_TEST_TOKEN", CANARY_NEW)
    assert cred().reveal() == CANARY_NEW


def test_missing_env_var_names_variable_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNCD_TEST_ABSENT", raising=False)
    cred = credential_from(CredentialRef(env="SYNCD_TEST_ABSENT"), key="vault.auth.token")
    with pytest.raises(CredentialError) as caught:
        cred()
    assert isinstance(caught.value, ConfigError)
    assert caught.value.exit_code == 2
    assert "SYNCD_TEST_ABSENT" in str(caught.value)
    assert "vault.auth.token" in str(caught.value)


def test_empty_env_var_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_TEST_EMPTY", "  \n")
    with pytest.raises(CredentialError, match="is empty"):
        credential_from(CredentialRef(env="SYNCD_TEST_EMPTY"), key="k")()


def test_file_credential_strips_surrounding_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"  {CANARY}\n")
    assert credential_from(CredentialRef(file=path), key="k")().reveal() == CANARY


def test_file_credential_is_reread_after_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(CANARY)
    cred = read_token_file(path)
    assert cred().reveal() == CANARY
    path.write_text(CANARY_NEW + "-longer")  # a different size: the stamp changes for sure
    assert cred().reveal() == CANARY_NEW + "-longer"


def test_file_credential_is_not_reread_while_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "token"
    path.write_text(CANARY)
    cred = read_token_file(path)
    cred()
    reads: list[Path] = []
    original = Path.read_text

    def counting_read(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", counting_read)
    for _ in range(3):
        assert cred().reveal() == CANARY
    assert reads == []


def test_kubernetes_style_symlink_swap_is_followed(tmp_path: Path) -> None:
    # The kubelet's layout: token -> ..data/token, ..data -> ..<timestamp>; rotation swaps ..data.
    old_dir = tmp_path / "..2024_01_01"
    new_dir = tmp_path / "..2024_01_02"
    old_dir.mkdir()
    new_dir.mkdir()
    (old_dir / "token").write_text(CANARY)
    (new_dir / "token").write_text(CANARY_NEW)  # same size is fine: the inode differs
    (tmp_path / "..data").symlink_to(old_dir.name)
    (tmp_path / "token").symlink_to("..data/token")
    cred = read_token_file(tmp_path / "token")
    assert cred().reveal() == CANARY
    tmp_link = tmp_path / "..data_tmp"
    tmp_link.symlink_to(new_dir.name)
    os.replace(tmp_link, tmp_path / "..data")
    assert cred().reveal() == CANARY_NEW


def test_missing_file_names_path_and_key(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    cred = credential_from(CredentialRef(file=path), key="cloudflare.auth.global_key")
    with pytest.raises(CredentialError) as caught:
        cred()
    assert str(path) in str(caught.value)
    assert "cloudflare.auth.global_key" in str(caught.value)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("\n")
    with pytest.raises(CredentialError, match="is empty"):
        read_token_file(path)()


def test_inline_credential_returns_the_value_masked() -> None:
    cred = credential_from(CredentialRef(value=CANARY), key="k")
    value = cred()
    assert value.reveal() == CANARY
    assert not _leaks(repr(cred) + repr(value) + str(value))


def test_credential_objects_and_errors_never_show_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "token"
    path.write_text(CANARY)
    monkeypatch.setenv("SYNCD_TEST_TOKEN", CANARY)
    file_cred = read_token_file(path)
    env_cred = credential_from(CredentialRef(env="SYNCD_TEST_TOKEN"), key="k")
    texts = [repr(file_cred), repr(env_cred), repr(file_cred()), str(env_cred())]
    path.write_text("")
    with pytest.raises(CredentialError) as caught:
        file_cred()
    texts.append(str(caught.value))
    assert not any(_leaks(t) for t in texts)
