"""Settings that work but are insecure: said by ``syncd check`` and at start-up, each with its fix.

``insecure_settings(settings)`` lists them as ``Insecurity(key, problem, fix)``:

- plain ``http://`` for Vault, the Cloudflare API or the Kubernetes API (the token crosses the
  network in clear text), except to a loopback host (the devstack, a local agent or proxy);
- TLS verification switched off (``vault.tls.verify = false``);
- inline credentials (``{ value = ... }``, allowed for development only);
- a credential file readable by others, or by a group the process is not in (a Kubernetes Secret
  mounted ``0440`` with the pod's ``fsGroup`` is fine);
- the default fingerprint key, kept in the state file beside the fingerprints it keys (whoever
  reads the state can then test guesses of a value against its fingerprint);
- the audit port on every interface without ``audit_prefix`` nor ``audit_allow``.

What is refused outright lives with the settings (``verify = false`` beside a ``ca_bundle``, in
``syncd.config.vault``) or where the credential is read (a trigger token under 32 bytes,
``syncd.app.credentials``).
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from syncd.config.cloudflare import CloudflareApiToken
from syncd.config.credentials import CredentialRef
from syncd.config.loading import Settings
from syncd.config.vault import AppRoleAuth, JwtAuth, KubernetesAuth, TokenAuth


@dataclass(frozen=True)
class Insecurity:
    key: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}; {self.fix}"


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _plain_http(key: str, url: str | None, what: str) -> Iterator[Insecurity]:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme == "http" and not _loopback(parts.hostname):
        yield Insecurity(key, f"{what} over plain http: its token crosses the network in clear text", "use https://")


def credential_refs(settings: Settings) -> list[tuple[str, CredentialRef]]:
    """Every credential reference of the settings, with its config key."""
    refs: list[tuple[str, CredentialRef]] = []
    auth = settings.vault.auth
    if isinstance(auth, TokenAuth):
        refs.append(("vault.auth.token", auth.token))
    elif isinstance(auth, AppRoleAuth):
        refs.append(("vault.auth.secret_id", auth.secret_id))
    cf = settings.cloudflare.auth
    if isinstance(cf, CloudflareApiToken):
        refs.append(("cloudflare.auth.api_token", cf.api_token))
    else:
        refs.append(("cloudflare.auth.global_key", cf.global_key))
    optional = (
        ("server.trigger_token", settings.server.trigger_token),
        ("sync.fingerprint_key", settings.sync.fingerprint_key),
        ("notifications.audit_prefix", settings.notifications.audit_prefix),
    )
    refs.extend((key, ref) for key, ref in optional if ref is not None)
    return refs


def _readable_by_others(path: Path) -> str | None:
    try:
        info = os.stat(path)
    except OSError:
        return None  # missing or unreadable: the credential check says so
    mode = stat.S_IMODE(info.st_mode)
    if mode & stat.S_IROTH:
        return f"mode {mode:04o}: readable by every user"
    if mode & stat.S_IRGRP and info.st_gid not in {os.getegid(), *os.getgroups()}:
        return f"mode {mode:04o}: readable by group {info.st_gid}, which this process is not in"
    return None


def insecure_settings(settings: Settings) -> list[Insecurity]:
    found: list[Insecurity] = []
    found.extend(_plain_http("vault.address", settings.vault.address, "Vault"))
    found.extend(_plain_http("cloudflare.api_base", settings.cloudflare.api_base, "the Cloudflare API"))
    if settings.leader_election.enabled or settings.state.backend == "kubernetes":
        found.extend(_plain_http("leader_election.api_url", settings.leader_election.api_url, "the Kubernetes API"))
    if not settings.vault.tls.verify:
        found.append(
            Insecurity(
                "vault.tls.verify",
                "TLS verification is off: anyone on the path can pose as Vault",
                "remove it, or set vault.tls.ca_bundle",
            )
        )
    refs = credential_refs(settings)
    auth = settings.vault.auth
    if isinstance(auth, KubernetesAuth | JwtAuth):
        refs.append(("vault.auth.token_file", CredentialRef(file=auth.token_file)))
    for key, ref in refs:
        if ref.is_inline:
            found.append(
                Insecurity(
                    key, "an inline credential (in the config file)", 'use { env = "VAR" } or { file = "/path" }'
                )
            )
        elif ref.file is not None and (why := _readable_by_others(ref.file)) is not None:
            found.append(
                Insecurity(
                    key,
                    f"{ref.file} is {why}",
                    f"chmod 0400 {ref.file} (a Kubernetes Secret: defaultMode 0400 or 0440 with fsGroup)",
                )
            )
    if settings.sync.fingerprint_key is None and settings.state.backend == "sqlite":
        found.append(
            Insecurity(
                "sync.fingerprint_key",
                "the default key is kept in the state file beside the fingerprints it keys",
                'set sync.fingerprint_key = { file = "/path" } (`openssl rand -hex 32`), kept apart from the state',
            )
        )
    notifications = settings.notifications
    if notifications.audit_listen is not None:
        host = notifications.audit_listen.rpartition(":")[0]
        if not _loopback(host) and notifications.audit_prefix is None and not notifications.audit_allow:
            found.append(
                Insecurity(
                    "notifications.audit_listen",
                    "the audit port takes audit entries from any peer",
                    "set notifications.audit_prefix (the device's prefix option) or audit_allow, and a NetworkPolicy",
                )
            )
    return found


__all__ = ["Insecurity", "credential_refs", "insecure_settings"]
