"""The daemon's form of the ``[[mapping]]`` tables: compact, immutable, shared where equal.

A validated pydantic model costs an instance, a ``__dict__`` and a fields-set per table: about
2 KiB per mapping with its four sub-tables, ~21 MiB at 10,000 mappings, kept for the life of the
process. These slotted frozen dataclasses hold the same values in about a tenth of that, with one
``TargetSettings`` per distinct target however many mappings share it, and ``VaultSource.ref`` made
once instead of on every access.

They are not validated themselves: ``compact_mappings`` builds them from tables that
``syncd.config.mappings`` validated (``MappingSettings.from_table`` does both, for tests and tools).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from syncd.config.mapping_sources import PRIMARY_SOURCE, SourceTable
from syncd.config.mappings import (
    ENCODINGS_BY_FORMAT,
    STORE_NAMES,
    KeyFormat,
    KeyUsage,
    MappingTable,
    SecretKeyTable,
    SecretTextTable,
    TargetTable,
    names_store_secrets,
)
from syncd.config.templates import CompiledTemplate
from syncd.model import DestinationKind, KvVersion, VaultSecretRef
from syncd.model_store import WORKERS_SCOPE

__all__ = [
    "PRIMARY_SOURCE",
    "MappingSettings",
    "SecretKeyBinding",
    "SecretTextBindings",
    "TargetSettings",
    "TemplateBinding",
    "VaultSource",
    "compact_mappings",
]


STATIC_CREDS = "static-creds"  # a database static role's credentials: GET {mount}/static-creds/{role}


@dataclass(frozen=True, slots=True)
class VaultSource:
    """One named source of a mapping: a Vault KV secret (v1 or v2), or a database static role
    (``kind = "database"``: ``path`` is then the role's name, read at ``{mount}/static-creds/{role}``).

    ``name`` is how bindings refer to it; the ``vault = {...}`` table of a mapping is the source
    named ``"vault"``, the first (primary) one: ``keys``, ``all_keys``, ``json_binding`` and
    ``secret_key.vault_key`` read its keys. A mapping without that table has its first named source
    as the primary one (the state keys its records by the primary source's path).
    """

    mount: str
    path: str
    kv_version: Literal["auto", 1, 2] = "auto"
    name: str = PRIMARY_SOURCE
    kind: Literal["kv", "database"] = "kv"
    ref: VaultSecretRef = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        path = f"{STATIC_CREDS}/{self.path}" if self.kind == "database" else self.path
        object.__setattr__(self, "ref", VaultSecretRef(self.mount, path))

    @property
    def is_kv(self) -> bool:
        return self.kind == "kv"

    @property
    def role(self) -> str:
        """A database source's static role (its ``path``)."""
        return self.path

    @property
    def stated_kv_version(self) -> KvVersion | None:
        return None if self.kv_version == "auto" else KvVersion(self.kv_version)

    def as_table(self) -> dict[str, Any]:
        if self.kind == "database":
            return {"kind": "database", "mount": self.mount, "role": self.path}
        return {"mount": self.mount, "path": self.path, "kv_version": self.kv_version}


@dataclass(frozen=True, slots=True)
class TargetSettings:
    """``script`` is the Worker's name, or for ``kind = SECRETS_STORE`` the store's name or id as
    configured (``secrets_store``); ``scopes`` and ``adopt`` apply to a store only."""

    script: str
    account_id: str | None = None
    dispatch_namespace: str | None = None
    kind: DestinationKind = DestinationKind.WORKER_SCRIPT
    scopes: tuple[str, ...] = ()
    adopt: bool = False

    @property
    def is_store(self) -> bool:
        return self.kind is DestinationKind.SECRETS_STORE

    def as_table(self) -> dict[str, Any]:
        """The target as its table gives it; a script target exactly as before stores existed (its
        mappings' digests, hence an upgrade, stay the same)."""
        if not self.is_store:
            return {"script": self.script, "account_id": self.account_id, "dispatch_namespace": self.dispatch_namespace}
        return {
            "secrets_store": self.script,
            "account_id": self.account_id,
            "scopes": list(self.scopes),
            "adopt": self.adopt,
        }


@dataclass(frozen=True, slots=True)
class SecretTextBindings:
    keys: dict[str, str] | None = None
    all_keys: bool = False
    prefix: str = ""
    uppercase: bool = False
    json_binding: str | None = None


@dataclass(frozen=True, slots=True)
class TemplateBinding:
    """A ``secret_text`` binding whose value is a template over the mapping's sources."""

    binding: str
    template: CompiledTemplate


@dataclass(frozen=True, slots=True)
class SecretKeyBinding:
    """A WebCrypto key binding (``secret_key``) built from one key of a source (``vault_key`` of
    ``source``) or from a template's result (``template``; ``vault_key`` is then None)."""

    vault_key: str | None
    binding: str
    format: KeyFormat
    algorithm: dict[str, Any]
    usages: tuple[KeyUsage, ...]
    encoding: Literal["base64", "hex", "pem", "json"] | None = None
    source: str = PRIMARY_SOURCE
    template: CompiledTemplate | None = None

    @property
    def material_from(self) -> str:
        """Where the key material comes from, for messages (never the material)."""
        if self.template is not None:
            return "the template's result"
        if self.source == PRIMARY_SOURCE:
            return f"Vault key {self.vault_key!r}"
        return f"key {self.vault_key!r} of source {self.source!r}"

    @classmethod
    def from_table(cls, raw: Any) -> SecretKeyBinding:
        """Validate one ``[[mapping.secret_key]]`` table (raises ``pydantic.ValidationError``)."""
        return _key_binding(SecretKeyTable.model_validate(raw))

    @property
    def value_encoding(self) -> str:
        """The encoding in force: the stated one or the format's default."""
        return self.encoding or ENCODINGS_BY_FORMAT[self.format][0]


@dataclass(frozen=True, slots=True)
class MappingSettings:
    name: str
    vault: VaultSource
    target: TargetSettings
    secret_text: SecretTextBindings | None = None
    secret_key: tuple[SecretKeyBinding, ...] = ()
    on_undeployed: Literal["report", "stage"] | None = None  # None: [sync] on_undeployed
    # Sources beyond the primary one (``vault``), each with its own name: a mapping is rewritten
    # when any of its sources changed, and its values are computed from all of them.
    more_sources: tuple[VaultSource, ...] = ()
    templates: tuple[TemplateBinding, ...] = ()  # secret_text bindings made by templates

    @property
    def sources(self) -> tuple[VaultSource, ...]:
        """Every source of the mapping, the primary (``vault``) first."""
        return (self.vault, *self.more_sources)

    def source_named(self, name: str) -> VaultSource | None:
        return next((s for s in self.sources if s.name == name), None)

    @classmethod
    def from_table(cls, raw: Any) -> MappingSettings:
        """Validate one ``[[mapping]]`` table (raises ``pydantic.ValidationError``)."""
        context = {STORE_NAMES: names_store_secrets(raw)}
        return compact_mappings([MappingTable.model_validate(raw, context=context)])[0]

    def static_binding_names(self) -> list[str]:
        """Binding names known from the config alone (``all_keys`` names depend on Vault's keys)."""
        names = [k.binding for k in self.secret_key]
        names.extend(t.binding for t in self.templates)
        if self.secret_text is not None:
            if self.secret_text.keys:
                names.extend(self.secret_text.keys.values())
            if self.secret_text.json_binding:
                names.append(self.secret_text.json_binding)
        return names

    def canonical_json(self) -> str:
        """The mapping without ``on_undeployed`` as compact JSON: byte for byte what pydantic's
        ``model_dump_json`` of its table gives (field order, ``null``, no spaces), so the digests
        made of it before the compact form existed stay the same."""
        document = self.as_table()
        del document["on_undeployed"]
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))

    def as_table(self) -> dict[str, Any]:
        """The mapping as its table's ``model_dump()`` gives it (every field, defaults included),
        except that what issue 17 added (``sources``, ``templates``, a key binding's ``source`` and
        ``template``) appears only when used: one-source mappings keep their digests."""
        text = self.secret_text
        vault = self.vault if self.vault.name == PRIMARY_SOURCE else None
        document: dict[str, Any] = {
            "name": self.name,
            "vault": None if vault is None else vault.as_table(),
            "target": self.target.as_table(),
            "secret_text": None
            if text is None
            else {
                "keys": text.keys,
                "all_keys": text.all_keys,
                "prefix": text.prefix,
                "uppercase": text.uppercase,
                "json_binding": text.json_binding,
            },
            "secret_key": [_key_table(k) for k in self.secret_key],
            "on_undeployed": self.on_undeployed,
        }
        named = [s for s in self.sources if s.name != PRIMARY_SOURCE]
        if named:
            document["sources"] = {s.name: s.as_table() for s in named}
        if self.templates:
            document["templates"] = {t.binding: t.template.source for t in self.templates}
        return document


def _key_table(k: SecretKeyBinding) -> dict[str, Any]:
    table: dict[str, Any] = {
        "vault_key": k.vault_key,
        "binding": k.binding,
        "format": k.format,
        "algorithm": k.algorithm,
        "usages": list(k.usages),
        "encoding": k.encoding,
    }
    if k.source != PRIMARY_SOURCE:
        table["source"] = k.source
    if k.template is not None:
        table["template"] = k.template.source
    return table


def _text_bindings(table: SecretTextTable | None, strings: dict[str, str]) -> SecretTextBindings | None:
    if table is None:
        return None
    keys = None if table.keys is None else {strings.setdefault(k, k): name for k, name in table.keys.items()}
    return SecretTextBindings(keys, table.all_keys, table.prefix, table.uppercase, table.json_binding)


def _key_binding(table: SecretKeyTable) -> SecretKeyBinding:
    return SecretKeyBinding(
        table.vault_key,
        table.binding,
        table.format,
        table.algorithm,
        tuple(table.usages),
        table.encoding,
        table.source,
        table.template,
    )


def _named_source(name: str, table: SourceTable, strings: dict[str, str]) -> VaultSource:
    if table.kind == "database":
        mount = strings.setdefault(table.mount or "database", table.mount or "database")
        return VaultSource(mount, table.role or "", name=name, kind="database")
    assert table.mount is not None and table.path is not None  # guaranteed by validation
    mount = strings.setdefault(table.mount, table.mount)
    return VaultSource(mount, table.path, table.kv_version or "auto", name=name)


def _target(table: TargetTable) -> TargetSettings:
    if table.secrets_store is None:
        assert table.script is not None  # guaranteed by TargetTable._rules
        return TargetSettings(table.script, table.account_id, table.dispatch_namespace)
    return TargetSettings(
        table.secrets_store,
        table.account_id,
        None,
        DestinationKind.SECRETS_STORE,
        tuple(table.scopes or (WORKERS_SCOPE,)),
        table.adopt is True,
    )


def compact_mappings(tables: Iterable[MappingTable]) -> tuple[MappingSettings, ...]:
    """The compact form of validated tables, in order; equal targets become one shared object, and
    so do equal mounts and equal Vault key names (10,000 mappings of one mount hold one string)."""
    targets: dict[TargetSettings, TargetSettings] = {}
    strings: dict[str, str] = {}
    compact = []
    for table in tables:
        target = _target(table.target)
        target = targets.setdefault(target, target)
        sources = [_named_source(name, source, strings) for name, source in table.sources.items()]
        if table.vault is not None:
            mount = strings.setdefault(table.vault.mount, table.vault.mount)
            sources.insert(0, VaultSource(mount, table.vault.path, table.vault.kv_version))
        compact.append(
            MappingSettings(
                table.name,
                sources[0],
                target,
                _text_bindings(table.secret_text, strings),
                tuple(_key_binding(k) for k in table.secret_key),
                table.on_undeployed,
                tuple(sources[1:]),
                tuple(TemplateBinding(name, template) for name, template in table.templates.items()),
            )
        )
    return tuple(compact)

