"""``syncd check``: can this configuration work here? One line per check, ``ok|FAIL name: detail``.

Checks, in order: the configured credentials can be read (a trigger token of at least 32 bytes);
``WARN`` lines for settings that work but are insecure (``syncd.config.insecure``, with the fix;
they do not change the exit code); Vault answers ``sys/health``; Vault
login works; every mapping's sources are readable (each KV secret's current version, each database
static role's credentials) and its values pass the rule ``once`` applies
(``syncd.engine.values.bindings_for``: every template rendered, size limit, key material, missing
keys; the values are then discarded); the Cloudflare credential verifies; every target
script exists; every Secrets Store target can be listed, each secret its mappings name is syncd's
or will be created (one syncd does not own only with ``adopt = true``), and the account's store
quota has room for those to create. Later checks still run when an earlier one fails, except that secret reads are
skipped without a Vault token. The exit code is the highest ``exit_code`` among the failures
(a credential that cannot be read is a configuration error, 2), 0 when everything passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import httpx
import requests

from syncd.app.credentials import CredentialError, credential_from, trigger_token_from
from syncd.app.service.wiring import Clients, build_clients
from syncd.config import (
    CloudflareApiToken,
    CredentialRef,
    JwtAuth,
    KubernetesAuth,
    Settings,
    VaultSource,
)
from syncd.config.insecure import credential_refs, insecure_settings
from syncd.engine.destinations_store import is_syncds
from syncd.engine.values import bindings_for
from syncd.errors import CloudflareAuthError, SyncdError
from syncd.model import DestinationKind, KvVersion, SecretVersion, Target

_HEALTH_DETAIL = {
    429: "unsealed standby",
    472: "disaster-recovery secondary",
    473: "performance standby",
    474: "standby without an active node",
    501: "not initialised",
    503: "sealed",
}
_HEALTH_OK = frozenset({200, 429, 473})


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    exit_code: int = 0
    warning: bool = False  # passed, but insecure (``syncd.config.insecure``)

    def line(self) -> str:
        mark = "FAIL" if not self.ok else "WARN" if self.warning else "ok"
        return f"{mark} {self.name}: {self.detail}"


def _failure(name: str, exc: BaseException) -> CheckResult:
    if isinstance(exc, SyncdError):
        return CheckResult(name, False, str(exc), exc.exit_code)
    # Text of an unexpected exception is not vetted for values: the class name only.
    return CheckResult(name, False, f"unexpected {type(exc).__name__}", 1)


def _run(name: str, check: Callable[[], str]) -> CheckResult:
    try:
        return CheckResult(name, True, check())
    except Exception as exc:  # a check reports every failure as a line
        return _failure(name, exc)


def _credential_refs(settings: Settings) -> list[tuple[str, CredentialRef]]:
    refs = [(key, ref) for key, ref in credential_refs(settings) if key != "notifications.audit_prefix"]
    auth = settings.vault.auth
    if isinstance(auth, KubernetesAuth | JwtAuth):
        refs.insert(0, ("vault.auth.token_file", CredentialRef(file=auth.token_file)))
    return [(key, ref) for key, ref in refs if key != "sync.fingerprint_key"]


def check_credentials(settings: Settings) -> Iterator[CheckResult]:
    defaults = settings.credential_defaults()
    for key, ref in _credential_refs(settings):
        name = f"credential {key}"
        note = f" ({defaults[key]})" if key in defaults else ""
        try:
            if key == "server.trigger_token":
                trigger_token_from(ref)  # also refuses a short one
            else:
                credential_from(ref, key=key)()
        except CredentialError as exc:
            yield CheckResult(name, False, exc.problems[0].message + note, exc.exit_code)
        else:
            yield CheckResult(name, True, f"readable ({ref.describe()}){note}")


def _vault_health(settings: Settings, clients: Clients) -> str:
    try:
        response = clients.vault.sys.read_health_status(method="GET")
    except requests.RequestException as exc:
        raise SyncdError(f"cannot reach Vault at {settings.vault.address} ({type(exc).__name__})") from None
    if isinstance(response, dict):
        version = response.get("version")
        return "active, unsealed" + (f", version {version}" if version else "")
    status = int(getattr(response, "status_code", 0))
    detail = _HEALTH_DETAIL.get(status, f"HTTP {status}")
    if status in _HEALTH_OK:
        return detail
    raise SyncdError(f"Vault is not serving: {detail}")


def _vault_auth(settings: Settings, clients: Clients) -> str:
    clients.tokens.ensure_token()
    expires = clients.tokens.expires_at
    lifetime = "does not expire" if expires is None else f"valid for {max(0.0, expires - time.time()):.0f}s"
    return f"logged in with {settings.vault.auth.method}; token {lifetime}"


def _source_read(clients: Clients, source: VaultSource) -> tuple[SecretVersion | None, str]:
    """One source's current data (None: its current version is deleted) and how it was read."""
    ref = source.ref
    if not source.is_kv:
        creds = clients.reader.static_creds(source.mount, source.role)
        return SecretVersion(ref, KvVersion.V1, None, creds.rotated_at, creds.data), "static role"
    kv = source.stated_kv_version or clients.reader.kv_version(ref.mount)
    if kv is KvVersion.V2:
        info = clients.reader.current_version(ref, kv)
        if info.deleted or info.destroyed:
            return None, f"kv v2, version {info.version} (current version deleted)"
        return clients.reader.read(ref, kv, info.version), f"kv v2, version {info.version}"
    return clients.reader.read(ref, kv, None), "kv v1"  # KV v1 has no metadata


def _mapping_read(settings: Settings, clients: Clients, name: str) -> str:
    mapping = next(m for m in settings.mappings if m.name == name)
    reads: dict[str, SecretVersion] = {}
    described = []
    for source in mapping.sources:
        read, where = _source_read(clients, source)
        label = str(source.ref) if len(mapping.sources) == 1 else f"{source.name} ({source.ref})"
        if read is None:
            return f"{label} readable, {where}"
        reads[source.name] = read
        described.append(f"{label} readable, {where}")
    # The rule `once` applies (every template rendered, size limit, key material, missing keys): the
    # values are then dropped.
    primary = reads.pop(mapping.vault.name)
    bindings, _ = bindings_for(
        mapping, settings.target_of(mapping), primary, on_delete=settings.sync.on_delete, others=reads
    )
    return f"{'; '.join(described)}, {len(bindings)} binding(s) acceptable"


def _cloudflare_auth(settings: Settings, clients: Clients) -> str:
    account = settings.cloudflare.account_id
    try:
        clients.cloudflare.verify_token(None)
    except CloudflareAuthError:
        if account is None or not isinstance(settings.cloudflare.auth, CloudflareApiToken):
            raise
        clients.cloudflare.verify_token(account)  # an account-owned token verifies under its account
        return f"account token active (account {account})"
    kind = "API token active" if isinstance(settings.cloudflare.auth, CloudflareApiToken) else "global key accepted"
    return kind


def _script(clients: Clients, target: Target) -> str:
    if not clients.cloudflare.script_exists(target):
        raise SyncdError("no such Worker script (10007)")
    return "exists"


def _store(settings: Settings, clients: Clients, target: Target) -> str:
    """The token can list the store; every named secret is syncd's or will be created (one it does
    not own only with ``adopt = true``); the quota has room for those to create."""
    listing = clients.store.secrets(target, fresh=True)
    store = clients.store.store(target)
    mappings = [m for m in settings.mappings if settings.target_of(m) == target]
    unowned, to_create, own = [], [], 0
    for mapping in mappings:
        for name in mapping.static_binding_names():
            secret = listing.get(name)
            if secret is None:
                to_create.append(name)
            elif is_syncds(secret):
                own += 1
            elif not mapping.target.adopt:
                unowned.append(f"{name} ({mapping.name})")
    quota = clients.store.quota(target) if to_create else None
    problems = []
    if unowned:
        problems.append(f"not syncd's (set adopt = true to take over): {', '.join(sorted(unowned))}")
    if quota is not None and quota.usage + len(to_create) > quota.quota:
        problems.append(f"no room for {len(to_create)} new secret(s): {quota.usage} of {quota.quota} in use")
    if problems:
        raise SyncdError("; ".join(problems))
    room = "" if quota is None else f"; quota {quota.usage} of {quota.quota} in use"
    return f"store {store.id} listed ({len(listing)} secret(s)): {own} syncd's, {len(to_create)} to create{room}"


def check_insecure(settings: Settings) -> Iterator[CheckResult]:
    """Settings that work but are insecure: a warning line each, with its fix (exit code unchanged)."""
    for finding in insecure_settings(settings):
        yield CheckResult(f"insecure {finding.key}", True, f"{finding.problem}; {finding.fix}", warning=True)


def run_checks(
    settings: Settings,
    *,
    vault_session: requests.Session | None = None,
    cloudflare_transport: httpx.BaseTransport | None = None,
) -> Iterator[CheckResult]:
    yield from check_credentials(settings)
    yield from check_insecure(settings)
    clients = build_clients(settings, vault_session=vault_session, cloudflare_transport=cloudflare_transport)
    try:
        yield _run("vault health", lambda: _vault_health(settings, clients))
        auth = _run("vault auth", lambda: _vault_auth(settings, clients))
        yield auth
        for mapping in settings.mappings:
            name = f"vault read {mapping.name}"
            if not auth.ok:
                yield CheckResult(name, False, "skipped: no Vault token", 1)
            else:
                yield _run(name, lambda m=mapping.name: _mapping_read(settings, clients, m))  # type: ignore[misc]
        yield _run("cloudflare auth", lambda: _cloudflare_auth(settings, clients))
        targets = sorted({settings.target_of(m) for m in settings.mappings})
        for target in targets:
            if target.kind is DestinationKind.SECRETS_STORE:
                yield _run(f"cloudflare store {target}", lambda t=target: _store(settings, clients, t))  # type: ignore[misc]
            else:
                yield _run(f"cloudflare script {target}", lambda t=target: _script(clients, t))  # type: ignore[misc]
    finally:
        clients.close()


def run_check(settings: Settings, out: TextIO, **clients: Any) -> int:
    worst = 0
    for result in run_checks(settings, **clients):
        print(result.line(), file=out, flush=True)
        if not result.ok:
            worst = max(worst, result.exit_code or 1)
    return worst
