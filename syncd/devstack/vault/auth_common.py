"""What every auth method shares: the ``token_*`` role fields and the login response.

Role fields follow ``sdk/helper/tokenutil`` (``token_policies`` with the legacy ``policies``
alias, ``token_ttl``/``ttl``, ``token_max_ttl``/``max_ttl``, ``token_period``/``period``,
``token_explicit_max_ttl``, ``token_num_uses``, ``token_no_default_policy``). A login answers
200 with ``data: null`` and the ``auth`` block (orphan service token, an entity id per alias).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.tokens import SYSTEM_DEFAULT_TTL, normalize_policies
from syncd.devstack.vault.wire import envelope, json_response, parse_bool, parse_duration, parse_int, string_list

if TYPE_CHECKING:
    from syncd.devstack.vault.state import VaultState


@dataclass
class TokenSettings:
    policies: list[str] = field(default_factory=list)
    ttl: int = 0
    max_ttl: int = 0
    explicit_max_ttl: int = 0
    period: int = 0
    num_uses: int = 0
    no_default_policy: bool = False

    def update(self, data: dict[str, Any]) -> None:
        def pick(*names: str) -> Any:
            for name in names:
                if name in data:
                    return data[name]
            return None

        if (value := pick("token_policies", "policies")) is not None:
            self.policies = string_list(value)
        if (value := pick("token_ttl", "ttl")) is not None:
            self.ttl = parse_duration(value, "token_ttl")
        if (value := pick("token_max_ttl", "max_ttl")) is not None:
            self.max_ttl = parse_duration(value, "token_max_ttl")
        if (value := pick("token_explicit_max_ttl")) is not None:
            self.explicit_max_ttl = parse_duration(value, "token_explicit_max_ttl")
        if (value := pick("token_period", "period")) is not None:
            self.period = parse_duration(value, "token_period")
        if (value := pick("token_num_uses")) is not None:
            self.num_uses = parse_int(value, "token_num_uses")
        if (value := pick("token_no_default_policy")) is not None:
            self.no_default_policy = parse_bool(value)

    def describe(self) -> dict[str, Any]:
        return {
            "token_policies": list(self.policies),
            "policies": list(self.policies),
            "token_ttl": self.ttl,
            "token_max_ttl": self.max_ttl,
            "token_explicit_max_ttl": self.explicit_max_ttl,
            "token_period": self.period,
            "token_num_uses": self.num_uses,
            "token_no_default_policy": self.no_default_policy,
            "token_type": "default",
            "token_bound_cidrs": [],
        }


class EntityRegistry:
    """Stable entity ids per (mount, alias), as Vault's identity store assigns them."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}

    def entity_for(self, mount: str, alias: str) -> str:
        return self._ids.setdefault((mount, alias), str(uuid.uuid4()))


def login_response(
    state: VaultState,
    *,
    mount_path: str,
    settings: TokenSettings,
    metadata: dict[str, str],
    display_name: str,
    alias: str,
    now: float,
) -> Response:
    mount_name = mount_path.strip("/").replace("/", "-")
    token, warnings = state.tokens.issue(
        now,
        policies=normalize_policies(settings.policies, add_default=not settings.no_default_policy),
        ttl=settings.ttl or SYSTEM_DEFAULT_TTL,
        max_ttl=settings.max_ttl,
        explicit_max_ttl=settings.explicit_max_ttl,
        period=settings.period,
        display_name=f"{mount_name}-{display_name}" if display_name else mount_name,
        meta=dict(metadata),
        path=f"auth/{mount_path}login",
        orphan=True,
        num_uses=settings.num_uses,
        entity_id=state.entities.entity_for(mount_path, alias),
    )
    return json_response(200, envelope(None, auth=token.auth_block(), warnings=warnings))
