"""Reload (SIGHUP): re-read the config file and apply what can be applied to a running service.

An invalid file is refused with all its problems and the running configuration stays. A valid one
is compared with the running one key by key, and every changed key is either **applied** (it takes
effect at the next cycle, or at once) or **needs a restart** (what it configures was built when the
service started: a client, a listener, the state store, the Lease). ``RELOAD_RULES`` says which, for
every key of the file; the reload code, its log lines and the README's table all come from it. A
key that needs a restart keeps its running value until then (the service never runs half of a
change: a new ``vault.namespace`` does not filter notifications while the client reads the old one),
and the warning names it.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog
from pydantic import BaseModel

from syncd.app.service.running import SettingsInForce
from syncd.config import Settings
from syncd.errors import ConfigError

log = structlog.get_logger("syncd.service")


class Effect(enum.StrEnum):
    APPLIED = "applied"
    RESTART = "needs a restart"


APPLIED, RESTART = Effect.APPLIED, Effect.RESTART


@dataclass(frozen=True)
class ReloadRule:
    key: str  # a section ("vault") or one key of a section ("cloudflare.api_base")
    effect: Effect
    why: str


_NEXT_CYCLE = "from the next cycle"
_CLOUDFLARE_CLIENT = "the Cloudflare client and its pacer are built at start (a rotated credential file is read anyway)"
_SERVER = "the HTTP server is started at start (a rotated token file is read anyway)"

RELOAD_RULES: Final[tuple[ReloadRule, ...]] = (
    ReloadRule("mapping", APPLIED, "from the next cycle; notifications of newly mapped paths at once"),
    ReloadRule("cloudflare.account_id", APPLIED, _NEXT_CYCLE),
    ReloadRule("cloudflare.write_mode", APPLIED, _NEXT_CYCLE),
    ReloadRule("cloudflare.write_concurrency", APPLIED, _NEXT_CYCLE),
    ReloadRule("cloudflare.script_backoff_seconds", APPLIED, _NEXT_CYCLE),
    ReloadRule("cloudflare.script_backoff_max_seconds", APPLIED, _NEXT_CYCLE),
    ReloadRule("sync.initial_sync", APPLIED, _NEXT_CYCLE),
    ReloadRule("sync.on_delete", APPLIED, _NEXT_CYCLE),
    ReloadRule("sync.prune", APPLIED, _NEXT_CYCLE),
    ReloadRule("sync.on_undeployed", APPLIED, _NEXT_CYCLE),
    ReloadRule(
        "sync.cycle_timeout_seconds",
        APPLIED,
        "from the next cycle (the bound of one Cloudflare request's retries, at most 60 s, at the next restart)",
    ),
    ReloadRule("sync.interval_seconds", APPLIED, "the interval job is rescheduled"),
    ReloadRule("sync.jitter_seconds", APPLIED, "the interval job is rescheduled"),
    ReloadRule("sync.backstop_interval_seconds", APPLIED, "from the next tick of the interval job"),
    ReloadRule("sync.drift", APPLIED, "from the next drift check"),
    ReloadRule("sync.drift_budget_share", APPLIED, "from the next drift check"),
    ReloadRule("sync.drift_check_interval_seconds", APPLIED, "the drift job is rescheduled"),
    ReloadRule("sync.shutdown_grace_seconds", APPLIED, "at shutdown"),
    ReloadRule("server.healthz_max_cycle_age_seconds", APPLIED, "from the next probe"),
    ReloadRule("logging", APPLIED, "at once (`--log-level` and `--log-format` still win over the file)"),
    ReloadRule("vault", RESTART, "the Vault client (address, namespace, TLS, pool, login) is built at start"),
    ReloadRule("cloudflare.api_base", RESTART, _CLOUDFLARE_CLIENT),
    ReloadRule("cloudflare.auth", RESTART, _CLOUDFLARE_CLIENT),
    ReloadRule("cloudflare.allow_inline_credentials", RESTART, _CLOUDFLARE_CLIENT),
    ReloadRule("cloudflare.timeout_seconds", RESTART, _CLOUDFLARE_CLIENT),
    ReloadRule("cloudflare.retry_attempts", RESTART, _CLOUDFLARE_CLIENT),
    ReloadRule("cloudflare.rate_limit_requests", RESTART, _CLOUDFLARE_CLIENT),
    ReloadRule("cloudflare.rate_limit_window_seconds", RESTART, _CLOUDFLARE_CLIENT),
    ReloadRule("server.enabled", RESTART, _SERVER),
    ReloadRule("server.bind", RESTART, _SERVER),
    ReloadRule("server.port", RESTART, _SERVER),
    ReloadRule("server.trigger_token", RESTART, _SERVER),
    ReloadRule("notifications", RESTART, "the audit listener and the event subscriber are started at start"),
    ReloadRule("sync.state_path", RESTART, "the state store is opened at start"),
    ReloadRule("state", RESTART, "the state store is opened at start"),
    ReloadRule("sync.fingerprint_key", RESTART, "read once at start"),
    ReloadRule("leader_election", RESTART, "the Lease elector is started at start"),
)


@functools.cache
def _rules() -> dict[str, ReloadRule]:
    return {rule.key: rule for rule in RELOAD_RULES}


def effect_of(key: str) -> Effect:
    """The effect of a change of ``key`` ("vault.address", "cloudflare.api_base", "mapping")."""
    rules = _rules()
    parts = key.split(".")
    for length in range(len(parts), 0, -1):
        rule = rules.get(".".join(parts[:length]))
        if rule is not None:
            return rule.effect
    raise KeyError(f"no reload rule for {key!r}")


def _at(settings: Settings, key: str) -> Any:
    value: Any = settings
    for name in key.split("."):
        value = getattr(value, name)
    return value


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """The keys whose values differ, one level inside a section that has one rule for all its keys
    ("vault.address", not "vault"), in the order of ``RELOAD_RULES``."""
    changed: list[str] = []
    for rule in RELOAD_RULES:
        before, after = _at(old, rule.key), _at(new, rule.key)
        if before == after:
            continue
        if isinstance(before, BaseModel) and type(before) is type(after):
            fields = type(before).model_fields
            changed.extend(f"{rule.key}.{name}" for name in fields if getattr(before, name) != getattr(after, name))
        else:
            changed.append(rule.key)
    return changed


def in_force(old: Settings, new: Settings) -> Settings:
    """``new``, with every key that needs a restart kept at its running (``old``) value."""
    sections: dict[str, Any] = {}
    keys: dict[str, dict[str, Any]] = {}
    for rule in RELOAD_RULES:
        if rule.effect is not RESTART or _at(old, rule.key) == _at(new, rule.key):
            continue
        section, _, key = rule.key.partition(".")
        if key:
            keys.setdefault(section, {})[key] = _at(old, rule.key)
        else:
            sections[section] = _at(old, section)
    for section, update in keys.items():
        sections[section] = getattr(new, section).model_copy(update=update)
    return new.model_copy(update=sections) if sections else new


def effects_table_markdown() -> str:
    """The README's table of what a reload applies: one row per effect and reason, listing its keys
    (a test keeps the README equal to it)."""
    rows: dict[tuple[Effect, str], list[str]] = {}
    for rule in RELOAD_RULES:
        rows.setdefault((rule.effect, rule.why), []).append(f"`{rule.key}`")
    lines = ["| keys | on reload | when, or why not |", "|---|---|---|"]
    lines += [f"| {', '.join(keys)} | {effect} | {why} |" for (effect, why), keys in rows.items()]
    return "\n".join(lines)


class Reloader:
    def __init__(
        self,
        config_path: Path,
        settings: SettingsInForce,
        *,
        loader: Callable[[Path], Settings],
        appliers: Sequence[Callable[[Settings, Settings], None]],
    ) -> None:
        """``appliers(old, new)`` run in order with the settings now in force (the running values of
        what needs a restart); one of them makes ``new`` the settings in force."""
        self.config_path = config_path
        self._settings = settings
        self._loader = loader
        self._appliers = appliers

    def reload(self) -> bool:
        """Re-read the config file; apply it when valid. True when applied."""
        try:
            loaded = self._loader(self.config_path)
        except ConfigError as exc:
            log.error(
                "configuration reload refused; keeping the running configuration",
                config=str(self.config_path),
                problems=[str(p) for p in exc.problems],
            )
            return False
        old = self._settings()
        changed = changed_keys(old, loaded)
        restart = [key for key in changed if effect_of(key) is RESTART]
        if restart:
            log.warning(
                "configuration changes that apply only after a restart; their running values stay in force",
                sections=_sections(restart),
                keys=restart,
            )
        new = in_force(old, loaded)
        for apply in self._appliers:
            apply(old, new)
        log.info(
            "configuration reloaded",
            config=str(self.config_path),
            mappings=len(new.mappings),
            applied=[key for key in changed if effect_of(key) is APPLIED],
        )
        return True


def _sections(keys: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(key.split(".", 1)[0] for key in keys))


__all__ = [
    "APPLIED",
    "RELOAD_RULES",
    "RESTART",
    "Effect",
    "ReloadRule",
    "Reloader",
    "changed_keys",
    "effect_of",
    "effects_table_markdown",
    "in_force",
]
