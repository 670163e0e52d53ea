"""``[[mapping]]``: which Vault secret feeds which Worker, as which bindings: the schema of the tables.

These pydantic models validate a ``[[mapping]]`` table (types, values, the one-pass rules) and name
every problem; they are not what the daemon keeps. Once valid, each table becomes the compact,
immutable form in ``syncd.config.compact`` (``MappingSettings`` and its parts), which costs a tenth
of the memory: at 10,000 mappings the validated models alone held ~21 MiB. Named sources and
templates have their tables and rules in ``syncd.config.mapping_sources``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, field_validator

from syncd.config.cloudflare import check_account_id
from syncd.config.mapping_sources import (
    PRIMARY_SOURCE,
    SourceTable,
    TemplateText,
    declared_sources,
    source_name_problem,
    template_reference_problems,
)
from syncd.config.strict import RuleProblem, StrictModel

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
# A store's name or id: the API states no rule for store names (UNVERIFIED), so only what cannot be
# meant (spaces, '/', empty, absurd length) is refused here; an unknown name fails at find_store.
_STORE_NAME = re.compile(r"^[^\s/]{1,255}$")
# Store secret names: wrangler checks ^[A-z0-9-_]+$, Infisical ^[a-zA-Z0-9_-]+$, and the API answers
# invalid_secret_name for '.' or '%' (see /work/shared/reference/cloudflare-secrets-store.md); the
# stricter of the two. The maximum length is UNVERIFIED: 255 here, well above any real name.
_STORE_SECRET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
STORE_SECRET_NAME_RULE = "a store secret name is letters, digits, '_' and '-' (at most 255), e.g. DB_PASSWORD"
STORE_NAMES = "store_secret_names"  # the validation-context key: this mapping's bindings name store secrets
StoreScope = Literal["workers", "ai_gateway", "dex", "access", "containers", "websearch"]


def is_binding_name(name: str) -> bool:
    """A JavaScript identifier that is not a reserved word (how Workers expose bindings on ``env``)."""
    return bool(_JS_IDENTIFIER.match(name)) and name not in _JS_RESERVED


class VaultSourceTable(StrictModel):
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


class TargetTable(StrictModel):
    """A Worker script (``script``, optionally in a ``dispatch_namespace``) or the account's Secrets
    Store (``secrets_store``, by name or id, with the ``scopes`` of the secrets syncd creates and
    ``adopt``: take over an existing store secret of the same name that syncd did not create)."""

    script: str | None = None
    secrets_store: str | None = None
    account_id: str | None = None
    dispatch_namespace: str | None = None
    scopes: list[StoreScope] | None = None
    adopt: bool | None = None

    @field_validator("script")
    @classmethod
    def _script(cls, value: str | None) -> str | None:
        if value is not None and not _SCRIPT_NAME.match(value):
            raise ValueError("not a Worker script name (lowercase letters, digits, - and _)")
        return value

    @field_validator("secrets_store")
    @classmethod
    def _store(cls, value: str | None) -> str | None:
        if value is not None and not _STORE_NAME.match(value):
            raise ValueError("not a Secrets Store name or id (1-255 characters, no spaces or '/')")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[StoreScope] | None) -> list[StoreScope] | None:
        if value is not None and not value:
            raise ValueError('give at least one scope; a Worker binding needs "workers"')
        if value is not None and len(set(value)) != len(value):
            raise ValueError("scopes repeat")
        return value

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        return check_account_id(value)

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        script, store = data.get("script"), data.get("secrets_store")
        if (script is None) == (store is None):
            yield (
                (),
                'give exactly one of script (a Worker) or secrets_store (the account\'s Secrets Store), e.g. '
                'target = { script = "api-gateway" } or target = { secrets_store = "default_secrets_store" }',
            )
        elif store is not None and data.get("dispatch_namespace") is not None:
            yield ("dispatch_namespace",), "a Secrets Store is not in a dispatch namespace"
        elif script is not None:
            for key in ("scopes", "adopt"):
                if data.get(key) is not None:
                    yield (key,), f"{key} applies only to a secrets_store target"


def names_store_secrets(mapping: Any) -> bool:
    """Whether a raw ``[[mapping]]`` table targets a Secrets Store (its bindings name store secrets)."""
    target = mapping.get("target") if isinstance(mapping, dict) else None
    return isinstance(target, dict) and target.get("secrets_store") is not None


BINDING_NAME_RULE = (
    "a binding name must be a JavaScript identifier (letters, digits, _ and $, not starting with a digit) "
    "and not a reserved word, e.g. API_KEY"
)


def binding_name_problem(value: Any, *, store: bool = False) -> str | None:
    """Why ``value`` cannot be a binding name (``store``: a store secret's name), or None (a
    non-string is left to the type check)."""
    if not isinstance(value, str):
        return None
    if store:
        if _STORE_SECRET_NAME.match(value):
            return None
        rule = STORE_SECRET_NAME_RULE
    elif is_binding_name(value):
        return None
    else:
        rule = BINDING_NAME_RULE
    shown = value if len(value) <= 80 else value[:79] + "\u2026"
    return f"{shown!r} is not a valid {'store secret' if store else 'binding'} name: {rule}"


def _binding_name_rules(data: dict[str, Any], *fields: str, store: bool = False) -> Iterator[RuleProblem]:
    for field in fields:
        why = binding_name_problem(data.get(field), store=store)
        if why:
            yield (field,), why


class SecretTextTable(StrictModel):
    """secret_text bindings: exactly one of ``keys``, ``all_keys`` or ``json_binding``."""

    keys: dict[str, str] | None = None
    all_keys: bool = False
    prefix: str = ""
    uppercase: bool = False
    json_binding: str | None = None

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        store = context.get(STORE_NAMES) is True
        keys = data.get("keys")
        if isinstance(keys, dict):
            if not keys:
                yield ("keys",), 'must map at least one Vault key, e.g. keys = { api_key = "API_KEY" }'
            for vault_key, binding in keys.items():
                why = binding_name_problem(binding, store=store)
                if why:
                    yield ("keys", vault_key), why
        yield from _binding_name_rules(data, "json_binding", store=store)
        all_keys = data.get("all_keys") is True
        modes = [
            m
            for m, on in (
                ("keys", keys is not None),
                ("all_keys", all_keys),
                ("json_binding", data.get("json_binding") is not None),
            )
            if on
        ]
        if len(modes) != 1:
            yield (
                (),
                (
                    f"give exactly one of keys, all_keys, json_binding (got {', '.join(modes) or 'none'}), "
                    'e.g. secret_text = { keys = { api_key = "API_KEY" } }'
                ),
            )
        if (data.get("prefix") or data.get("uppercase") is True) and not all_keys:
            yield (), "prefix and uppercase apply only with all_keys = true"
        prefix = data.get("prefix")
        if isinstance(prefix, str) and prefix and not is_binding_name(prefix + "X"):
            yield ("prefix",), f"prefix {prefix[:80]!r} cannot start a JavaScript identifier"


KeyFormat = Literal["raw", "pkcs8", "spki", "jwk"]
KeyUsage = Literal["encrypt", "decrypt", "sign", "verify", "deriveKey", "deriveBits", "wrapKey", "unwrapKey"]
ENCODINGS_BY_FORMAT: dict[str, tuple[str, ...]] = {
    "raw": ("base64", "hex"),
    "pkcs8": ("pem", "base64", "hex"),
    "spki": ("pem", "base64", "hex"),
    "jwk": ("json",),
}


class SecretKeyTable(StrictModel):
    """A WebCrypto key binding (``secret_key``) built from one key of a source (``vault_key``, of
    the ``vault`` source unless ``source`` names another) or from a template's result."""

    vault_key: str | None = Field(default=None, min_length=1)
    source: str = PRIMARY_SOURCE
    template: TemplateText | None = None
    binding: str
    format: KeyFormat
    algorithm: dict[str, Any]
    usages: list[KeyUsage] = Field(min_length=1)
    encoding: Literal["base64", "hex", "pem", "json"] | None = None

    @field_validator("algorithm")
    @classmethod
    def _algorithm(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("name"), str) or not value["name"]:
            raise ValueError("needs a 'name' (a WebCrypto algorithm, e.g. HMAC, AES-GCM, RSA-PSS, ECDSA)")
        return value

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        yield from _binding_name_rules(data, "binding")
        if (data.get("vault_key") is None) == (data.get("template") is None):
            yield (), 'give exactly one of vault_key (e.g. vault_key = "signing_key") or template'
        if data.get("template") is not None and "source" in data:
            yield ("source",), "source goes with vault_key; a template names its sources itself"
        allowed = ENCODINGS_BY_FORMAT.get(data.get("format"))  # type: ignore[arg-type]
        encoding = data.get("encoding")
        if allowed is not None and isinstance(encoding, str) and encoding not in allowed:
            yield (
                ("encoding",),
                (
                    f"encoding {encoding[:20]!r} does not fit format {data['format']!r} "
                    f"(use one of {', '.join(allowed)})"
                ),
            )
        usages = data.get("usages")
        if isinstance(usages, list) and all(isinstance(u, str) for u in usages) and len(set(usages)) != len(usages):
            yield ("usages",), "usages repeat"


class MappingTable(StrictModel):
    name: str
    vault: VaultSourceTable | None = None  # the source named "vault"; optional when [mapping.sources] has some
    target: TargetTable
    secret_text: SecretTextTable | None = None
    secret_key: list[SecretKeyTable] = []  # noqa: RUF012 - a pydantic model (via StrictModel) copies defaults
    on_undeployed: Literal["report", "stage"] | None = None  # None: [sync] on_undeployed
    sources: dict[str, SourceTable] = {}  # noqa: RUF012 - more named sources
    templates: dict[str, TemplateText] = {}  # noqa: RUF012 - binding name -> template (secret_text)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _MAPPING_NAME.match(value):
            raise ValueError("letters, digits, '_', '.', '-' (at most 63), starting with a letter or digit")
        return value

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        if names_store_secrets(data) and data.get("secret_key"):
            yield (
                ("secret_key",),
                "a Secrets Store holds text: a secrets_store target takes secret_text bindings only",
            )
        if data.get("secret_text") is None and not data.get("secret_key") and not data.get("templates"):
            yield (
                (),
                (
                    "a mapping needs [mapping.secret_text], [mapping.templates] or at least one "
                    '[[mapping.secret_key]], e.g. secret_text = { keys = { api_key = "API_KEY" } }'
                ),
            )
        yield from _source_rules(data)
        first: dict[str, str] = {}
        for where, name in raw_binding_names(data):
            if name in first:
                yield where, f"binding name {name[:80]!r} is already used in this mapping (at {first[name]})"
            else:
                first[name] = ".".join(str(p) for p in where)


def _source_rules(data: dict[str, Any]) -> Iterator[RuleProblem]:
    """Sources are named, each once; whatever reads a source reads a declared one."""
    sources = data.get("sources")
    if isinstance(sources, dict):
        for name in sources:
            why = source_name_problem(str(name))
            if why:
                yield ("sources", name), why
    elif "vault" not in data:
        yield ("vault",), 'missing: add vault = { mount = "secret", path = "payments/api" } (or [mapping.sources.NAME])'
    if isinstance(sources, dict) and not sources and "vault" not in data:
        yield ("sources",), "declares no source: add [mapping.sources.NAME] or vault = { ... }"
    declared = declared_sources(data)
    has_vault = PRIMARY_SOURCE in declared
    if data.get("secret_text") is not None and not has_vault:
        yield ("secret_text",), (
            "secret_text reads the vault source: add vault = { ... }, or write the bindings as [mapping.templates]"
        )
    templates = data.get("templates")
    if isinstance(templates, dict):
        for binding, text in templates.items():
            why = binding_name_problem(binding)
            if why:
                yield ("templates", binding), why
            yield from (
                (("templates", binding), str(p)) for p in template_reference_problems(text, declared)
            )
    keys_list = data.get("secret_key")
    if isinstance(keys_list, list):
        for index, spec in enumerate(keys_list):
            if not isinstance(spec, dict):
                continue
            source = spec.get("source", PRIMARY_SOURCE)
            if spec.get("vault_key") is not None and isinstance(source, str) and source not in declared:
                listed = ", ".join(sorted(declared)) or "none"
                yield ("secret_key", index, "source"), (
                    f"{source[:40]!r} is not a source of this mapping (sources: {listed})"
                )
            if spec.get("template") is not None:
                for problem in template_reference_problems(spec["template"], declared):
                    yield ("secret_key", index, "template"), str(problem)


def raw_binding_names(mapping: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(location, name) of every binding name known from a raw ``[[mapping]]`` table alone."""
    if not isinstance(mapping, dict):
        return
    text = mapping.get("secret_text")
    if isinstance(text, dict):
        keys = text.get("keys")
        if isinstance(keys, dict):
            yield from ((("secret_text", "keys", k), v) for k, v in keys.items() if isinstance(v, str))
        if isinstance(text.get("json_binding"), str):
            yield ("secret_text", "json_binding"), text["json_binding"]
    keys_list = mapping.get("secret_key")
    if isinstance(keys_list, list):
        for index, spec in enumerate(keys_list):
            if isinstance(spec, dict) and isinstance(spec.get("binding"), str):
                yield ("secret_key", index, "binding"), spec["binding"]
    templates = mapping.get("templates")
    if isinstance(templates, dict):
        yield from ((("templates", name), name) for name in templates if isinstance(name, str))
