"""``Settings`` (the whole file), its loading with every problem named in one pass, and mapping fingerprints.

``parse_config`` validates the whole file in one pass (see ``syncd.config.strict``): types and
values of every section, the rules inside each table, and the rules across mappings (duplicate
names, a binding written by two mappings on one script, a target without an account id) all run
whether or not anything else is wrong, so one run lists every problem.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, PrivateAttr, ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails

from syncd.config.cloudflare import DEFAULT_CLOUDFLARE_TOKEN_ENV, MAX_BULK_SECRETS, CloudflareSettings
from syncd.config.compact import MappingSettings, TargetSettings, compact_mappings
from syncd.config.leader import LeaderElectionSettings
from syncd.config.mappings import STORE_NAMES, MappingTable, names_store_secrets, raw_binding_names
from syncd.config.messages import problems_from_validation
from syncd.config.state import KUBERNETES_NEEDS_KEY, StateSettings
from syncd.config.strict import INLINE_ALLOWED, RuleProblem, StrictModel, ValidatedAs, carried_error
from syncd.config.sync import LoggingSettings, NotificationSettings, ServerSettings, SyncSettings
from syncd.config.vault import DEFAULT_VAULT_TOKEN_ENV, VaultSettings
from syncd.errors import ConfigError, ConfigProblem, shorten
from syncd.model import Target

CONFIG_SOURCES = "give the file with --config PATH or $SYNCD_CONFIG (default /etc/syncd/config.toml)"


def _compact_mapping_tables(value: Any, info: ValidationInfo) -> tuple[MappingSettings, ...]:
    """Each table validated and made compact in turn, so that the models of 10,000 tables never
    exist at once; every table's problems are still reported, under ``mapping[i]``."""
    if not isinstance(value, list):
        raise ValidationError.from_exception_data("list", [InitErrorDetails(type="list_type", loc=(), input=value)])
    errors: list[InitErrorDetails] = []
    context = info.context if isinstance(info.context, dict) else {}

    def tables() -> Iterator[MappingTable]:
        for index, table in enumerate(value):
            context[STORE_NAMES] = names_store_secrets(table)  # store secret names follow the store's rule
            try:
                yield MappingTable.model_validate(table, context=context)
            except ValidationError as exc:
                errors.extend(carried_error(e, (index,)) for e in exc.errors(include_url=False))
        context.pop(STORE_NAMES, None)

    compact = compact_mappings(tables())
    if errors:
        raise ValidationError.from_exception_data(MappingTable.__name__, errors)
    return compact


# ``[[mapping]]``: validated as ``MappingTable`` models (every problem named), kept compact.
MappingList = Annotated[
    tuple[MappingSettings, ...],
    PlainValidator(_compact_mapping_tables),
    PlainSerializer(lambda mappings: [m.as_table() for m in mappings]),
    ValidatedAs(MappingTable),
]


class Settings(StrictModel):
    vault: VaultSettings
    cloudflare: CloudflareSettings
    sync: SyncSettings = SyncSettings()
    server: ServerSettings = ServerSettings()
    notifications: NotificationSettings = NotificationSettings()
    logging: LoggingSettings = LoggingSettings()
    leader_election: LeaderElectionSettings = LeaderElectionSettings()
    state: StateSettings = StateSettings()
    mapping: MappingList = ()
    # keyed by the default account too: a model_copy shares this dict but may change the default
    _targets: dict[tuple[TargetSettings, str | None], Target] = PrivateAttr(default_factory=dict)

    @property
    def mappings(self) -> tuple[MappingSettings, ...]:
        return self.mapping

    def target_of(self, mapping: MappingSettings) -> Target:
        """The mapping's Worker or Secrets Store, one shared object per distinct target (not one per call)."""
        key = (mapping.target, self.cloudflare.account_id)
        target = self._targets.get(key)
        if target is None:
            account = mapping.target.account_id or self.cloudflare.account_id
            assert account is not None  # guaranteed by validation
            target = Target(account, mapping.target.script, mapping.target.dispatch_namespace, mapping.target.kind)
            target = self._targets.setdefault(key, target)
        return target

    def credential_defaults(self) -> dict[str, str]:
        """Credentials in force by default (no auth section in the file): config key -> why, for ``check``."""
        defaults = {}
        if "auth" not in self.vault.model_fields_set:
            defaults["vault.auth.token"] = f"default: no [vault.auth] in the file, so ${DEFAULT_VAULT_TOKEN_ENV}"
        if "auth" not in self.cloudflare.model_fields_set:
            defaults["cloudflare.auth.api_token"] = (
                f"default: no [cloudflare.auth] in the file, so ${DEFAULT_CLOUDFLARE_TOKEN_ENV}"
            )
        return defaults

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        """Rules across sections and mappings, over the raw tables (each mapping's own problems are its own)."""
        yield from _state_rules(data)
        mappings = data.get("mapping")
        if not isinstance(mappings, list):
            return
        cloudflare = data.get("cloudflare")
        default_account = cloudflare.get("account_id") if isinstance(cloudflare, dict) else None
        seen_names: dict[str, int] = {}
        owners: dict[tuple[Any, ...], tuple[int, str, str]] = {}
        for index, mapping in enumerate(mappings):
            if not isinstance(mapping, dict):
                continue
            name = mapping.get("name")
            label = shorten(name) if isinstance(name, str) else f"mapping[{index}]"
            if isinstance(name, str):
                if name in seen_names:
                    first = seen_names[name]
                    yield (
                        ("mapping", index, "name"),
                        f"duplicate mapping name (also mapping[{first}]); names must be unique",
                    )
                seen_names.setdefault(name, index)
            target = mapping.get("target")
            if not isinstance(target, dict):
                continue
            store = target.get("secrets_store")
            if not isinstance(target.get("script"), str) and not isinstance(store, str):
                continue
            account = target.get("account_id") or default_account
            if account is None:
                yield (
                    ("mapping", index, "target", "account_id"),
                    (
                        "no account id here and no cloudflare.account_id default: add account_id = "
                        '"<32 hex characters>" to [cloudflare] (or to this target)'
                    ),
                )
                continue
            bindings = list(raw_binding_names(mapping))
            # A store secret is one per account and name. An account has one Secrets Store (the
            # beta's limit), so the store is not part of the key: one mapping may name it and
            # another give its id, which only the API could tell apart.
            script = (
                (str(account), target["script"], target.get("dispatch_namespace"))
                if store is None
                else (str(account), "secrets_store", store)
            )
            key = ("script", *script) if store is None else ("store", str(account))
            shown = "/".join(str(p) for p in script if p is not None)
            for where, binding in bindings:
                other_index, other, theirs = owners.setdefault((*key, binding), (index, label, shown))
                if other_index != index:
                    also = "" if theirs == shown else f" (as {shorten(theirs, 120)}: an account has one Secrets Store)"
                    yield (
                        ("mapping", index, *where),
                        (
                            f"binding {shorten(binding)!r} on {shorten(shown, 120)} is also written by mapping "
                            f"{other!r}{also}"
                        ),
                    )
            if len(bindings) > MAX_BULK_SECRETS * 10:
                yield ("mapping", index), "too many bindings for one mapping"


def _state_rules(data: dict[str, Any]) -> Iterator[RuleProblem]:
    state, sync = data.get("state"), data.get("sync")
    kubernetes = isinstance(state, dict) and state.get("backend") == "kubernetes"
    if kubernetes and not (isinstance(sync, dict) and sync.get("fingerprint_key") is not None):
        yield ("sync", "fingerprint_key"), KUBERNETES_NEEDS_KEY
    leader = data.get("leader_election")
    if isinstance(leader, dict) and leader.get("enabled") is True and not kubernetes:
        yield (
            ("leader_election", "enabled"),
            'replicas cannot share a SQLite file: leader election needs state.backend = "kubernetes"',
        )


# --- loading --------------------------------------------------------------------------------------


def parse_config(text: str, file: str = "<config>") -> Settings:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(file, None, "(syntax)", str(exc))]) from None
    try:
        return Settings.model_validate(raw, context={INLINE_ALLOWED: False})
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(file, raw, exc, Settings)) from None


def load_config(path: Path | str) -> Settings:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem(str(path), None, "(file)", f"cannot read: {exc.strerror}; {CONFIG_SOURCES}")]
        ) from None
    return parse_config(text, str(path))


def mapping_fingerprint(mapping: MappingSettings, target: Target, *, fingerprint_key_id: str | None = None) -> str:
    """A stable digest of what a mapping asks for (not of any value): a change re-reads Vault.

    ``fingerprint_key_id`` names an external fingerprint key (a digest of it, never the key): a new
    key makes the recorded value fingerprints incomparable, so the mapping must be read again. None
    (the state store's own key) leaves the digest as it always was.
    """
    # on_undeployed only says how a refused write is handled, not what is desired: left out, so that
    # setting it neither re-reads Vault nor changes existing digests.
    payload = mapping.canonical_json() + "|" + str(target)
    if fingerprint_key_id is not None:
        payload += "|fingerprint-key:" + fingerprint_key_id
    return hashlib.sha256(payload.encode()).hexdigest()[:32]
