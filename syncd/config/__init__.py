"""Validated, immutable settings loaded from a TOML file.

``load_config(path)`` returns a ``Settings`` or raises ``ConfigError`` listing every problem of the
file found in one pass, each naming the file, the mapping and the dotted key. Types are strict and
unknown keys are errors. Credentials are references (an environment variable or a file); inline
values are refused unless ``cloudflare.allow_inline_credentials`` / ``vault.allow_inline_credentials``
says otherwise.

One module per part of the file: ``vault``, ``cloudflare``, ``sync`` (sync, server, notifications,
logging), ``mappings`` (the schema of ``[[mapping]]``; ``compact`` for the form the daemon keeps);
``credentials`` for credential references, ``loading`` for ``Settings``, ``parse_config``/``load_config``
and ``mapping_fingerprint``; ``state`` for ``[state]`` (the state
backend), ``leader`` for ``[leader_election]``; ``strict`` for the base model and its one-pass rules,
``messages`` for the wording of problems. Import from ``syncd.config``.
"""

from syncd.config.cloudflare import (
    DEFAULT_CLOUDFLARE_API,
    MAX_BULK_SECRETS,
    CloudflareApiToken,
    CloudflareAuth,
    CloudflareGlobalKey,
    CloudflareSettings,
)
from syncd.config.compact import MappingSettings, SecretKeyBinding, SecretTextBindings, TargetSettings, VaultSource
from syncd.config.credentials import CredentialRef
from syncd.config.loading import Settings, load_config, mapping_fingerprint, parse_config
from syncd.config.mappings import KeyFormat, KeyUsage, is_binding_name
from syncd.config.state import KubernetesStateSettings, StateSettings
from syncd.config.sync import (
    MIN_FINGERPRINT_KEY_BYTES,
    LoggingSettings,
    NotificationSettings,
    ServerSettings,
    SyncSettings,
)
from syncd.config.vault import AppRoleAuth, JwtAuth, KubernetesAuth, TokenAuth, VaultAuth, VaultSettings, VaultTls
from syncd.errors import ConfigError

__all__ = [
    "DEFAULT_CLOUDFLARE_API",
    "MAX_BULK_SECRETS",
    "MIN_FINGERPRINT_KEY_BYTES",
    "AppRoleAuth",
    "CloudflareApiToken",
    "CloudflareAuth",
    "CloudflareGlobalKey",
    "CloudflareSettings",
    "ConfigError",
    "CredentialRef",
    "JwtAuth",
    "KeyFormat",
    "KeyUsage",
    "KubernetesAuth",
    "KubernetesStateSettings",
    "LoggingSettings",
    "MappingSettings",
    "NotificationSettings",
    "SecretKeyBinding",
    "SecretTextBindings",
    "ServerSettings",
    "Settings",
    "StateSettings",
    "SyncSettings",
    "TargetSettings",
    "TokenAuth",
    "VaultAuth",
    "VaultSettings",
    "VaultSource",
    "VaultTls",
    "is_binding_name",
    "load_config",
    "mapping_fingerprint",
    "parse_config",
]
