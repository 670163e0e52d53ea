"""``Settings`` (the whole file), its loading with every problem named at once, and mapping fingerprints."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from syncd.config.cloudflare import MAX_BULK_SECRETS, CloudflareApiToken, CloudflareSettings
from syncd.config.credentials import CredentialRef
from syncd.config.leader import LeaderElectionSettings
from syncd.config.mappings import MappingSettings
from syncd.config.state import StateSettings, state_problems
from syncd.config.strict import StrictModel
from syncd.config.sync import LoggingSettings, NotificationSettings, ServerSettings, SyncSettings
from syncd.config.vault import AppRoleAuth, TokenAuth, VaultSettings
from syncd.errors import ConfigError, ConfigProblem
from syncd.model import Target

_UNION_TAGS = frozenset({"token", "approle", "kubernetes", "jwt", "api_token", "global_key"})


class Settings(StrictModel):
    vault: VaultSettings
    cloudflare: CloudflareSettings
    sync: SyncSettings = SyncSettings()
    server: ServerSettings = ServerSettings()
    notifications: NotificationSettings = NotificationSettings()
    logging: LoggingSettings = LoggingSettings()
    leader_election: LeaderElectionSettings = LeaderElectionSettings()
    state: StateSettings = StateSettings()
    mapping: list[MappingSettings] = Field(default_factory=list)

    @property
    def mappings(self) -> list[MappingSettings]:
        return self.mapping

    def target_of(self, mapping: MappingSettings) -> Target:
        account = mapping.target.account_id or self.cloudflare.account_id
        assert account is not None  # guaranteed by validation
        return Target(account, mapping.target.script, mapping.target.dispatch_namespace)


# --- loading --------------------------------------------------------------------------------------


def _mapping_label(raw: Mapping[str, Any], index: int) -> str:
    mappings = raw.get("mapping")
    if isinstance(mappings, list) and index < len(mappings) and isinstance(mappings[index], dict):
        name = mappings[index].get("name")
        if isinstance(name, str) and name:
            return name
    return f"mapping[{index}]"


def _problems_from_validation(file: str, raw: Mapping[str, Any], exc: ValidationError) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = [str(part) for part in error["loc"]]
        # Unions add the member's tag or class to the location ("vault.auth.approle.secret_id"):
        # drop it so the key reads as the user wrote it.
        if len(loc) > 2 and loc[1] == "auth" and loc[2] in _UNION_TAGS:
            del loc[2]
        mapping = None
        if len(loc) >= 2 and loc[0] == "mapping" and loc[1].isdigit():
            mapping = _mapping_label(raw, int(loc[1]))
            loc = loc[2:]
        key = ".".join(loc) or "(mapping)" if mapping else ".".join(loc) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(ConfigProblem(file, mapping, key, message))
    return problems


def _semantic_problems(file: str, settings: Settings) -> list[ConfigProblem]:
    """Rules across fields and mappings, checked once the shape is valid."""
    problems: list[ConfigProblem] = []
    creds: list[tuple[str, CredentialRef | None, bool]] = [
        ("server.trigger_token", settings.server.trigger_token, False),
        # Never inline: the key guards the fingerprints of a state file, a config file is no vault.
        ("sync.fingerprint_key", settings.sync.fingerprint_key, False),
    ]
    cf_auth = settings.cloudflare.auth
    if isinstance(cf_auth, CloudflareApiToken):
        creds.append(("cloudflare.auth.api_token", cf_auth.api_token, settings.cloudflare.allow_inline_credentials))
    else:
        creds.append(("cloudflare.auth.global_key", cf_auth.global_key, settings.cloudflare.allow_inline_credentials))
    vault_auth = settings.vault.auth
    if isinstance(vault_auth, TokenAuth):
        creds.append(("vault.auth.token", vault_auth.token, settings.vault.allow_inline_credentials))
    elif isinstance(vault_auth, AppRoleAuth):
        creds.append(("vault.auth.secret_id", vault_auth.secret_id, settings.vault.allow_inline_credentials))
    for key, ref, allowed in creds:
        if ref is not None and ref.is_inline and not allowed:
            problems.append(
                ConfigProblem(
                    file,
                    None,
                    key,
                    "inline credentials are refused; use env or file "
                    "(or set allow_inline_credentials = true, for development only)",
                )
            )
    problems.extend(state_problems(file, settings.state, settings.sync.fingerprint_key))

    seen_names: dict[str, int] = {}
    owners: dict[tuple[Target, str], str] = {}
    for index, mapping in enumerate(settings.mapping):
        if mapping.name in seen_names:
            problems.append(
                ConfigProblem(
                    file, mapping.name, "name", f"duplicate mapping name (also mapping[{seen_names[mapping.name]}])"
                )
            )
        seen_names.setdefault(mapping.name, index)
        if mapping.target.account_id is None and settings.cloudflare.account_id is None:
            problems.append(
                ConfigProblem(
                    file, mapping.name, "target.account_id", "no account id here and no cloudflare.account_id default"
                )
            )
            continue
        target = settings.target_of(mapping)
        for binding in mapping.static_binding_names():
            other = owners.setdefault((target, binding), mapping.name)
            if other != mapping.name:
                problems.append(
                    ConfigProblem(
                        file,
                        mapping.name,
                        "bindings",
                        f"binding {binding!r} on {target} is also written by mapping {other!r}",
                    )
                )
        if len(mapping.static_binding_names()) > MAX_BULK_SECRETS * 10:
            problems.append(ConfigProblem(file, mapping.name, "bindings", "too many bindings for one mapping"))
    return problems


def parse_config(text: str, file: str = "<config>") -> Settings:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(file, None, "(syntax)", str(exc))]) from None
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_problems_from_validation(file, raw, exc)) from None
    problems = _semantic_problems(file, settings)
    if problems:
        raise ConfigError(problems)
    return settings


def load_config(path: Path | str) -> Settings:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), None, "(file)", f"cannot read: {exc.strerror}")]) from None
    return parse_config(text, str(path))


def mapping_fingerprint(mapping: MappingSettings, target: Target, *, fingerprint_key_id: str | None = None) -> str:
    """A stable digest of what a mapping asks for (not of any value): a change re-reads Vault.

    ``fingerprint_key_id`` names an external fingerprint key (a digest of it, never the key): a new
    key makes the recorded value fingerprints incomparable, so the mapping must be read again. None
    (the state store's own key) leaves the digest as it always was.
    """
    payload = mapping.model_dump_json() + "|" + str(target)
    if fingerprint_key_id is not None:
        payload += "|fingerprint-key:" + fingerprint_key_id
    return hashlib.sha256(payload.encode()).hexdigest()[:32]
