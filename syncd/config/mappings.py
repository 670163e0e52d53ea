"""``[[mapping]]``: which Vault secret feeds which Worker, as which bindings."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from syncd.config.cloudflare import check_account_id
from syncd.config.strict import StrictModel
from syncd.model import KvVersion, VaultSecretRef

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
_MAPPING_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def is_binding_name(name: str) -> bool:
    """A JavaScript identifier that is not a reserved word (how Workers expose bindings on ``env``)."""
    return bool(_JS_IDENTIFIER.match(name)) and name not in _JS_RESERVED


class VaultSource(StrictModel):
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


class TargetSettings(StrictModel):
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
        return check_account_id(value)


def _check_binding_name(value: str) -> str:
    if not is_binding_name(value):
        raise ValueError(f"{value!r} is not a valid JavaScript identifier for a binding name")
    return value


class SecretTextBindings(StrictModel):
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


class SecretKeyBinding(StrictModel):
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


class MappingSettings(StrictModel):
    name: str
    vault: VaultSource
    target: TargetSettings
    secret_text: SecretTextBindings | None = None
    secret_key: list[SecretKeyBinding] = []  # noqa: RUF012 - a pydantic model (via StrictModel) copies defaults

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
