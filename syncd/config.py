"""Validated, immutable settings loaded from a TOML file.

``load_config(path)`` returns a ``Settings`` or raises ``ConfigError`` listing every problem at once,
each naming the file, the mapping and the dotted key. Unknown keys are errors. Credentials are
references (an environment variable or a file); inline values are refused unless
``cloudflare.allow_inline_credentials`` / ``vault.auth.allow_inline_credentials`` says otherwise.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from syncd.errors import ConfigError, ConfigProblem
from syncd.model import KvVersion, Target, VaultSecretRef

DEFAULT_CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"
MAX_BULK_SECRETS = 100
MIN_FINGERPRINT_KEY_BYTES = 32  # an external sync.fingerprint_key, as UTF-8 bytes

_JS_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_JS_RESERVED = frozenset(
    [
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "import",
        "in",
        "instanceof",
        "new",
        "null",
        "return",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
        "let",
        "static",
        "implements",
        "interface",
        "package",
        "private",
        "protected",
        "public",
        "await",
    ]
)
_SCRIPT_NAME = re.compile(r"^[a-z0-9_][a-z0-9-_]*$")
_ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")
_UNION_TAGS = frozenset({"token", "approle", "kubernetes", "jwt", "api_token", "global_key"})
_MAPPING_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def is_binding_name(name: str) -> bool:
    """A JavaScript identifier that is not a reserved word (how Workers expose bindings on ``env``)."""
    return bool(_JS_IDENTIFIER.match(name)) and name not in _JS_RESERVED


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


# --- credentials ---------------------------------------------------------------------------------


class CredentialRef(_Strict):
    """Where a credential comes from: exactly one of ``env``, ``file`` or (development only) ``value``."""

    env: str | None = None
    file: Path | None = None
    value: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _exactly_one(self) -> CredentialRef:
        given = [k for k in ("env", "file", "value") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of env, file, value (got {', '.join(given) or 'none'})")
        return self

    @property
    def is_inline(self) -> bool:
        return self.value is not None

    def describe(self) -> str:
        """Where it comes from, for messages; never the value."""
        if self.env is not None:
            return f"env:{self.env}"
        if self.file is not None:
            return f"file:{self.file}"
        return "inline"


# --- vault ----------------------------------------------------------------------------------------


class VaultTls(_Strict):
    verify: bool = True
    ca_bundle: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    @model_validator(mode="after")
    def _cert_pair(self) -> VaultTls:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        return self


class TokenAuth(_Strict):
    method: Literal["token"]
    token: CredentialRef = CredentialRef(env="VAULT_TOKEN")


class AppRoleAuth(_Strict):
    method: Literal["approle"]
    role_id: str = Field(min_length=1)
    secret_id: CredentialRef
    mount: str = "approle"


class KubernetesAuth(_Strict):
    method: Literal["kubernetes"]
    role: str = Field(min_length=1)
    token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    mount: str = "kubernetes"


class JwtAuth(_Strict):
    method: Literal["jwt"]
    role: str = Field(min_length=1)
    token_file: Path
    mount: str = "jwt"


VaultAuth = Annotated[TokenAuth | AppRoleAuth | KubernetesAuth | JwtAuth, Field(discriminator="method")]


class VaultSettings(_Strict):
    address: str = Field(pattern=r"^https?://")
    namespace: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    concurrency: int = Field(default=8, ge=1, le=64)
    tls: VaultTls = VaultTls()
    auth: VaultAuth = TokenAuth(method="token")
    allow_inline_credentials: bool = False


# --- cloudflare -----------------------------------------------------------------------------------


class CloudflareApiToken(_Strict):
    api_token: CredentialRef


class CloudflareGlobalKey(_Strict):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    global_key: CredentialRef


def _cloudflare_auth_kind(raw: Any) -> str:
    if isinstance(raw, CloudflareGlobalKey) or (isinstance(raw, dict) and "api_token" not in raw and "email" in raw):
        return "global_key"
    return "api_token"


CloudflareAuth = Annotated[
    Annotated[CloudflareApiToken, Tag("api_token")] | Annotated[CloudflareGlobalKey, Tag("global_key")],
    Discriminator(_cloudflare_auth_kind),
]


class CloudflareSettings(_Strict):
    api_base: str = Field(default=DEFAULT_CLOUDFLARE_API, pattern=r"^https?://")
    account_id: str | None = None
    auth: CloudflareAuth
    allow_inline_credentials: bool = False
    timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    write_mode: Literal["bulk", "single"] = "bulk"
    rate_limit_requests: int = Field(default=1200, ge=1)
    rate_limit_window_seconds: float = Field(default=300.0, gt=0)
    retry_attempts: int = Field(default=5, ge=1, le=20)

    @field_validator("account_id")
    @classmethod
    def _account_id(cls, value: str | None) -> str | None:
        if value is not None and not _ACCOUNT_ID.match(value):
            raise ValueError("must be 32 lowercase hex characters")
        return value


# --- sync, server, logging ------------------------------------------------------------------------


class SyncSettings(_Strict):
    interval_seconds: float = Field(default=30.0, ge=1)
    jitter_seconds: float = Field(default=3.0, ge=0)
    cycle_timeout_seconds: float = Field(default=120.0, gt=0)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    state_path: Path = Path("/var/lib/syncd/state.sqlite3")
    initial_sync: Literal["push", "missing-only"] = "push"
    on_delete: Literal["keep", "delete"] = "keep"
    prune: bool = False
    # The key of the value fingerprints, kept outside the state file (default: a random key that the
    # state store keeps beside the fingerprints). Read once at start; see config.example.toml.
    fingerprint_key: CredentialRef | None = None


class ServerSettings(_Strict):
    enabled: bool = True
    bind: str = "0.0.0.0"  # noqa: S104 - a pod serves probes and metrics on its own IP
    port: int = Field(default=8080, ge=0, le=65535)
    trigger_token: CredentialRef | None = None
    healthz_max_cycle_age_seconds: float | None = Field(default=None, gt=0)


class NotificationSettings(_Strict):
    """Change notifications: Vault's ``socket`` audit device (every edition) and, with
    ``vault_events``, Vault Enterprise's event notifications (see the README).

    Vault streams one JSON line per request to ``audit_listen`` / one event per change over the
    WebSocket; a write to a mapped path triggers a reconciliation of just that secret's mappings.
    Polling stays the safety net.
    """

    audit_listen: str | None = Field(default=None, pattern=r"^[^:]*:\d{1,5}$")  # "HOST:PORT"; None = off
    debounce_seconds: float = Field(default=0.2, ge=0, le=60)
    # Vault Enterprise event notifications (WebSocket; see syncd.app.vault_events): off by default,
    # Community Edition has none. One connection per event type pattern.
    vault_events: bool = False
    vault_event_types: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9*?_./-]+$")]] = Field(
        default_factory=lambda: ["kv-v2/*", "kv-v1/*"], min_length=1, max_length=8
    )


class LoggingSettings(_Strict):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


# --- mappings -------------------------------------------------------------------------------------


class VaultSource(_Strict):
    mount: str = Field(min_length=1)
    path: str = Field(min_length=1)
    kv_version: Literal["auto", 1, 2] = "auto"

    @field_validator("mount", "path")
    @classmethod
    def _no_edge_slashes(cls, value: str) -> str:
        stripped = value.strip("/")
        if not stripped:
            raise ValueError("must not be empty")
        return stripped

    @property
    def ref(self) -> VaultSecretRef:
        return VaultSecretRef(self.mount, self.path)

    @property
    def stated_kv_version(self) -> KvVersion | None:
        return None if self.kv_version == "auto" else KvVersion(self.kv_version)


class TargetSettings(_Strict):
    script: str
    account_id: str | None = None
    dispatch_namespace: str | None = None

    @field_validator("script")
    @classmethod
    def _script(cls, value: str) -> str:
        if not _SCRIPT_NAME.match(value):
            raise ValueError("not a Worker script name (lowercase letters, digits, - and _)")
        return value

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not _ACCOUNT_ID.match(value):
            raise ValueError("must be 32 lowercase hex characters")
        return value


def _check_binding_name(value: str) -> str:
    if not is_binding_name(value):
        raise ValueError(f"{value!r} is not a valid JavaScript identifier for a binding name")
    return value


class SecretTextBindings(_Strict):
    """secret_text bindings: exactly one of ``keys``, ``all_keys`` or ``json_binding``."""

    keys: dict[str, str] | None = None
    all_keys: bool = False
    prefix: str = ""
    uppercase: bool = False
    json_binding: str | None = None

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            if not value:
                raise ValueError("must map at least one Vault key")
            for binding in value.values():
                _check_binding_name(binding)
        return value

    @field_validator("json_binding")
    @classmethod
    def _json_binding(cls, value: str | None) -> str | None:
        return None if value is None else _check_binding_name(value)

    @model_validator(mode="after")
    def _one_mode(self) -> SecretTextBindings:
        modes = [
            m
            for m, on in (
                ("keys", self.keys is not None),
                ("all_keys", self.all_keys),
                ("json_binding", self.json_binding is not None),
            )
            if on
        ]
        if len(modes) != 1:
            raise ValueError(f"give exactly one of keys, all_keys, json_binding (got {', '.join(modes) or 'none'})")
        if (self.prefix or self.uppercase) and not self.all_keys:
            raise ValueError("prefix and uppercase apply only with all_keys")
        if self.prefix and not is_binding_name(self.prefix + "X"):
            raise ValueError(f"prefix {self.prefix!r} cannot start a JavaScript identifier")
        return self


KeyFormat = Literal["raw", "pkcs8", "spki", "jwk"]
KeyUsage = Literal["encrypt", "decrypt", "sign", "verify", "deriveKey", "deriveBits", "wrapKey", "unwrapKey"]
_ENCODINGS_BY_FORMAT: dict[str, tuple[str, ...]] = {
    "raw": ("base64", "hex"),
    "pkcs8": ("pem", "base64", "hex"),
    "spki": ("pem", "base64", "hex"),
    "jwk": ("json",),
}


class SecretKeyBinding(_Strict):
    """A WebCrypto key binding (``secret_key``) built from one Vault key."""

    vault_key: str = Field(min_length=1)
    binding: str
    format: KeyFormat
    algorithm: dict[str, Any]
    usages: list[KeyUsage] = Field(min_length=1)
    encoding: Literal["base64", "hex", "pem", "json"] | None = None

    @field_validator("binding")
    @classmethod
    def _binding(cls, value: str) -> str:
        return _check_binding_name(value)

    @field_validator("algorithm")
    @classmethod
    def _algorithm(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("name"), str) or not value["name"]:
            raise ValueError("needs a 'name' (a WebCrypto algorithm, e.g. HMAC, AES-GCM, RSA-PSS, ECDSA)")
        return value

    @model_validator(mode="after")
    def _encoding_fits_format(self) -> SecretKeyBinding:
        allowed = _ENCODINGS_BY_FORMAT[self.format]
        if self.encoding is not None and self.encoding not in allowed:
            raise ValueError(
                f"encoding {self.encoding!r} does not fit format {self.format!r} (use one of {', '.join(allowed)})"
            )
        if len(set(self.usages)) != len(self.usages):
            raise ValueError("usages repeat")
        return self

    @property
    def value_encoding(self) -> str:
        """The encoding in force: the stated one or the format's default."""
        return self.encoding or _ENCODINGS_BY_FORMAT[self.format][0]


class MappingSettings(_Strict):
    name: str
    vault: VaultSource
    target: TargetSettings
    secret_text: SecretTextBindings | None = None
    secret_key: list[SecretKeyBinding] = []

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _MAPPING_NAME.match(value):
            raise ValueError("letters, digits, '_', '.', '-' (at most 63), starting with a letter or digit")
        return value

    @model_validator(mode="after")
    def _has_bindings(self) -> MappingSettings:
        if self.secret_text is None and not self.secret_key:
            raise ValueError("a mapping needs [mapping.secret_text] or at least one [[mapping.secret_key]]")
        names = self.static_binding_names()
        if len(names) != len(set(names)):
            raise ValueError("a binding name repeats inside the mapping")
        return self

    def static_binding_names(self) -> list[str]:
        """Binding names known from the config alone (``all_keys`` names depend on Vault's keys)."""
        names = [k.binding for k in self.secret_key]
        if self.secret_text is not None:
            if self.secret_text.keys:
                names.extend(self.secret_text.keys.values())
            if self.secret_text.json_binding:
                names.append(self.secret_text.json_binding)
        return names


class Settings(_Strict):
    vault: VaultSettings
    cloudflare: CloudflareSettings
    sync: SyncSettings = SyncSettings()
    server: ServerSettings = ServerSettings()
    notifications: NotificationSettings = NotificationSettings()
    logging: LoggingSettings = LoggingSettings()
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


__all__ = [
    "AppRoleAuth",
    "CloudflareApiToken",
    "CloudflareGlobalKey",
    "CloudflareSettings",
    "ConfigError",
    "CredentialRef",
    "JwtAuth",
    "KubernetesAuth",
    "MappingSettings",
    "SecretKeyBinding",
    "SecretTextBindings",
    "Settings",
    "TokenAuth",
    "VaultSettings",
    "is_binding_name",
    "load_config",
    "parse_config",
]
