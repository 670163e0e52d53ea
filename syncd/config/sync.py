"""``[sync]``, ``[server]``, ``[notifications]`` and ``[logging]``: how the daemon runs."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from syncd.config.credentials import CredentialRef
from syncd.config.strict import ConfigPath, RuleProblem, StrictModel, number_in

MIN_FINGERPRINT_KEY_BYTES = 32  # an external sync.fingerprint_key, as UTF-8 bytes


DEFAULT_BACKSTOP_SECONDS = 300.0


class SyncSettings(StrictModel):
    interval_seconds: float = Field(default=30.0, ge=1)
    # While a Vault notification source is connected, the full sweep spreads over this period
    # instead (a slice of the secrets every interval_seconds); see syncd.app.service.sweep.
    # Unset: 300 s, or interval_seconds when that is longer (see ``backstop_seconds``).
    backstop_interval_seconds: float | None = Field(default=None, gt=0)
    jitter_seconds: float = Field(default=3.0, ge=0)
    cycle_timeout_seconds: float = Field(default=120.0, gt=0)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    state_path: ConfigPath = Path("/var/lib/syncd/state.sqlite3")
    initial_sync: Literal["push", "missing-only"] = "push"
    on_delete: Literal["keep", "delete"] = "keep"
    prune: bool = False
    # A script whose latest version is not fully deployed refuses secret writes (10214/10215):
    # "report" fails the mapping until the rollout finishes; "stage" writes the changes into a new
    # undeployed version (never deploying it). Overridable per mapping.
    on_undeployed: Literal["report", "stage"] = "report"
    # Hand edits of the bindings syncd owns (syncd.engine.drift): re-push them, only report, or do
    # not look. Checks are spread over the interval and use at most drift_budget_share of the
    # Cloudflare rate budget.
    drift: Literal["correct", "report", "off"] = "correct"
    drift_check_interval_seconds: float = Field(default=300.0, ge=1)
    drift_budget_share: float = Field(default=0.1, gt=0, le=1)
    # The key of the value fingerprints, kept outside the state file (default: a random key that the
    # state store keeps beside the fingerprints). Read once at start; see config.example.toml.
    fingerprint_key: CredentialRef | None = None

    @property
    def backstop_seconds(self) -> float:
        """The backstop sweep's period in force (``backstop_interval_seconds`` or its default)."""
        if self.backstop_interval_seconds is not None:
            return self.backstop_interval_seconds
        return max(DEFAULT_BACKSTOP_SECONDS, self.interval_seconds)

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        # Unset, the backstop follows a longer interval by itself; set, it must be at least the
        # interval (every tick sweeps a slice of it), and the message says both ways out.
        if "backstop_interval_seconds" not in data:
            return
        interval = number_in(data, "interval_seconds", 30.0)
        backstop = number_in(data, "backstop_interval_seconds", DEFAULT_BACKSTOP_SECONDS)
        if interval is None or backstop is None or backstop >= interval:
            return
        yield (
            ("backstop_interval_seconds",),
            f"backstop_interval_seconds ({backstop:g}) must be at least interval_seconds ({interval:g}): "
            f"raise it, or remove it (unset, it is {DEFAULT_BACKSTOP_SECONDS:g} or interval_seconds when that "
            "is longer)",
        )


class ServerSettings(StrictModel):
    enabled: bool = True
    bind: str = "0.0.0.0"  # noqa: S104 - a pod serves probes and metrics on its own IP
    port: int = Field(default=8080, ge=0, le=65535)
    trigger_token: CredentialRef | None = None
    healthz_max_cycle_age_seconds: float | None = Field(default=None, gt=0)


class NotificationSettings(StrictModel):
    """Change notifications: Vault's ``socket`` audit device (every edition) and, with
    ``vault_events``, Vault Enterprise's event notifications (see the README).

    Vault streams one JSON line per request to ``audit_listen`` / one event per change over the
    WebSocket; a write to a mapped path triggers a reconciliation of just that secret's mappings.
    Polling stays the safety net.
    """

    audit_listen: str | None = Field(default=None, pattern=r"^[^:]*:\d{1,5}$")  # "HOST:PORT"; None = off
    # Minimum spacing between two deliveries of one source (0: every write starts a reconcile at
    # once; writes that arrive meanwhile coalesce into one follow-up). See syncd.app.notify.dispatch.
    debounce_seconds: float = Field(default=0.0, ge=0, le=60)
    # Vault Enterprise event notifications (WebSocket; see syncd.app.notify.vault_events): off by default,
    # Community Edition has none. One connection per event type pattern.
    vault_events: bool = False
    vault_event_types: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9*?_./-]+$")]] = Field(
        default_factory=lambda: ["kv-v2/*", "kv-v1/*"], min_length=1, max_length=8
    )
    # The audit port trusts nothing by itself (syncd.app.notify.audit): the shared secret of the
    # socket device's `prefix` option (lines without it are dropped), the peer networks allowed to
    # connect (CIDR; empty: any), the connection slots, and how long a connection may stay silent
    # before it sent a valid audit entry.
    audit_prefix: CredentialRef | None = None
    audit_allow: list[str] = Field(default_factory=list, max_length=64)
    audit_max_connections: int = Field(default=32, ge=1, le=256)
    audit_unverified_timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("audit_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not an IP network (CIDR, e.g. 10.0.0.0/8)") from None
        return value


class LoggingSettings(StrictModel):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("level", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        # "INFO" as Python, vault (log_level) and most tools accept it; stored lowercase.
        return value.lower() if isinstance(value, str) else value
