"""Credential references (``syncd.config.CredentialRef``) turned into ``Callable[[], SecretValue]``.

The clients call the callable every time they need the credential, so a rotation takes effect on
the next request without a restart:

- ``env``: the environment variable is read at call time.
- ``file``: the file is re-read when what ``os.stat`` says about it (following symlinks) changes:
  inode, device, size or mtime. Kubernetes rotates a mounted Secret by swapping the ``..data``
  symlink to a new directory, so the path keeps its name while the inode behind it changes.
  Surrounding whitespace (the trailing newline of ``echo > file``) is stripped.
- ``value``: inline, for development only (the config refuses it unless allowed).

Failures raise ``CredentialError`` naming the config key and the variable or file, never a value.
Every value read is remembered by ``syncd.redaction``, which masks it wherever text is scrubbed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from syncd.config import CredentialRef
from syncd.errors import ConfigError, ConfigProblem
from syncd.model import SecretValue
from syncd.redaction import remember_credential

Credential = Callable[[], SecretValue]


class CredentialError(ConfigError):
    """A credential cannot be read: the variable is unset or empty, the file missing or empty.

    A ``ConfigError`` (exit code 2): the deployment does not provide what the configuration names.
    """

    def __init__(self, key: str, source: str, message: str) -> None:
        self.key = key
        self.source = source
        super().__init__([ConfigProblem(source, None, key, message)])

    def __str__(self) -> str:
        return f"credential {self.key} ({self.source}): {self.problems[0].message}"


class EnvCredential:
    """Reads one environment variable at every call."""

    __slots__ = ("key", "name")

    def __init__(self, name: str, *, key: str) -> None:
        self.name = name
        self.key = key

    def __call__(self) -> SecretValue:
        value = os.environ.get(self.name)
        if value is None:
            raise CredentialError(self.key, f"env:{self.name}", f"environment variable {self.name} is not set")
        value = value.strip()
        if not value:
            raise CredentialError(self.key, f"env:{self.name}", f"environment variable {self.name} is empty")
        remember_credential(value)
        return SecretValue(value)

    def __repr__(self) -> str:
        return f"EnvCredential({self.name!r})"


class FileCredential:
    """Reads a file, again only when its identity (inode, device, size, mtime) changes.

    Thread-safe: the clients call it from several worker threads.
    """

    __slots__ = ("_cached", "_lock", "_stamp", "key", "path")

    def __init__(self, path: Path | str, *, key: str) -> None:
        self.path = Path(path)
        self.key = key
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._cached: SecretValue | None = None

    def __call__(self) -> SecretValue:
        source = f"file:{self.path}"
        try:
            info = os.stat(self.path)  # follows symlinks: a swapped ..data link changes the inode
        except FileNotFoundError:
            raise CredentialError(self.key, source, f"file {self.path} does not exist") from None
        except OSError as exc:
            raise CredentialError(self.key, source, f"cannot stat {self.path}: {exc.strerror}") from None
        stamp = (info.st_ino, info.st_dev, info.st_size, info.st_mtime_ns)
        with self._lock:
            if stamp == self._stamp and self._cached is not None:
                return self._cached
            try:
                text = self.path.read_text(encoding="utf-8")
            except OSError as exc:
                raise CredentialError(self.key, source, f"cannot read {self.path}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise CredentialError(self.key, source, f"{self.path} is not UTF-8 text") from None
            text = text.strip()
            if not text:
                raise CredentialError(self.key, source, f"file {self.path} is empty")
            remember_credential(text)
            self._stamp = stamp
            self._cached = SecretValue(text)
            return self._cached

    def __repr__(self) -> str:
        return f"FileCredential({str(self.path)!r})"


class InlineCredential:
    """A value written in the configuration (development only)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        remember_credential(value)
        self._value = SecretValue(value)

    def __call__(self) -> SecretValue:
        return self._value

    def __repr__(self) -> str:
        return "InlineCredential(***)"


def credential_from(ref: CredentialRef, *, key: str) -> Credential:
    """The callable for a reference; ``key`` is the config key, used in error messages."""
    if ref.env is not None:
        return EnvCredential(ref.env, key=key)
    if ref.file is not None:
        return FileCredential(ref.file, key=key)
    assert ref.value is not None  # CredentialRef guarantees exactly one source
    return InlineCredential(ref.value)


MIN_TRIGGER_TOKEN_BYTES = 32


def trigger_token_from(ref: CredentialRef) -> Credential:
    """``server.trigger_token``'s reader, after reading it once now: a token shorter than
    ``MIN_TRIGGER_TOKEN_BYTES`` (UTF-8) is refused with a ``CredentialError`` naming the key and
    where it comes from (a one-character token was accepted; a bearer token must not be guessable)."""
    read = credential_from(ref, key="server.trigger_token")
    if len(read().reveal().encode()) < MIN_TRIGGER_TOKEN_BYTES:
        raise CredentialError(
            "server.trigger_token",
            ref.describe(),
            f"the trigger token needs at least {MIN_TRIGGER_TOKEN_BYTES} bytes (e.g. `openssl rand -hex 32`)",
        )
    return read


def read_token_file(path: Path | str, *, key: str = "vault.auth.token_file") -> Credential:
    """A Kubernetes / JWT service-account token file, re-read when it rotates."""
    return FileCredential(path, key=key)


__all__ = [
    "Credential",
    "CredentialError",
    "EnvCredential",
    "FileCredential",
    "InlineCredential",
    "credential_from",
    "read_token_file",
    "trigger_token_from",
]
