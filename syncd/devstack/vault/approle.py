"""The AppRole auth method: roles, role ids, secret ids, login.

Login with an unknown role id, a wrong, used-up or expired secret id answers 400
``invalid role or secret ID`` (the text real Vault returns; secret-id expiry by the emulator
clock). ``auth.metadata`` is ``{"role_name": ...}``. A role with ``bind_secret_id=false`` logs in
with the role id alone. Secret-id management (``custom-secret-id``, ``secret-id/lookup`` and
``/destroy``, ``secret-id-accessor/lookup`` and ``/destroy``) is in ``approle_secret_ids``.
UNVERIFIED: the text for operations on a missing role (``role "x" does not exist``, 400) was not
confirmed in the plugin source.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.approle_secret_ids import register_secret_id_routes
from syncd.devstack.vault.auth_backend import ROLE, AuthBackend
from syncd.devstack.vault.auth_common import TokenSettings
from syncd.devstack.vault.routing import LIST, READ, WRITE, Call
from syncd.devstack.vault.wire import (
    VaultError,
    envelope,
    error_response,
    json_response,
    no_content,
    parse_bool,
    parse_duration,
    parse_int,
    string_list,
)

if TYPE_CHECKING:
    from syncd.devstack.vault.state import VaultState

INVALID_CREDENTIALS = "invalid role or secret ID"


@dataclass
class SecretId:
    accessor: str
    created: float
    ttl: int
    uses_left: int  # 0: unlimited
    metadata: dict[str, str] = field(default_factory=dict)
    cidr_list: list[str] = field(default_factory=list)
    last_updated: float | None = None  # None: never updated since creation
    token_bound_cidrs: list[str] = field(default_factory=list)

    def expired(self, now: float) -> bool:
        return self.ttl > 0 and now >= self.created + self.ttl


@dataclass
class AppRole:
    name: str
    role_id: str
    token: TokenSettings = field(default_factory=TokenSettings)
    bind_secret_id: bool = True
    secret_id_ttl: int = 0
    secret_id_num_uses: int = 0
    secret_ids: dict[str, SecretId] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        described = self.token.describe()
        described.update(
            {
                "bind_secret_id": self.bind_secret_id,
                "secret_id_ttl": self.secret_id_ttl,
                "secret_id_num_uses": self.secret_id_num_uses,
                "secret_id_bound_cidrs": None,
                "local_secret_ids": False,
            }
        )
        return described


class AppRoleBackend(AuthBackend[AppRole]):
    mount_type = "approle"

    def __init__(self, state: VaultState) -> None:
        super().__init__(state)
        self.router.add([READ, WRITE], ROLE + "/role-id", self.role_id)
        self.router.add([WRITE], ROLE + "/secret-id", self.new_secret_id)
        self.router.add([LIST], ROLE + "/secret-id/?", self.list_secret_ids)
        register_secret_id_routes(self)

    def _role(self, call: Call) -> AppRole:
        role = self.roles.get(call.params["name"].lower())
        if role is None:
            raise VaultError(400, f'role "{call.params["name"]}" does not exist')
        return role

    def write_role(self, name: str, call: Call) -> None:
        role = self.roles.setdefault(name, AppRole(name=name, role_id=str(uuid.uuid4())))
        role.token.update(call.data)
        if "bind_secret_id" in call.data:
            role.bind_secret_id = parse_bool(call.get("bind_secret_id"), True)
        if "secret_id_ttl" in call.data:
            role.secret_id_ttl = parse_duration(call.get("secret_id_ttl"), "secret_id_ttl")
        if "secret_id_num_uses" in call.data:
            role.secret_id_num_uses = parse_int(call.get("secret_id_num_uses"), "secret_id_num_uses")
        if "role_id" in call.data:
            role.role_id = str(call.get("role_id"))

    def role_id(self, call: Call) -> Response:
        role = self._role(call)
        if call.operation == WRITE:
            role.role_id = str(call.get("role_id") or role.role_id)
            return no_content()
        return json_response(200, envelope({"role_id": role.role_id}))

    def new_secret_id(self, call: Call) -> Response:
        role = self._role(call)
        return self.issue_secret_id(role, str(uuid.uuid4()), call)

    def issue_secret_id(self, role: AppRole, value: str, call: Call) -> Response:
        """Register ``value`` as a secret id of ``role`` (``secret-id`` and ``custom-secret-id``)."""
        metadata = call.get("metadata")
        if isinstance(metadata, str) and metadata:
            metadata = json.loads(metadata)
        ttl = parse_duration(call.get("ttl"), "ttl") if call.get("ttl") else role.secret_id_ttl
        uses = parse_int(call.get("num_uses"), "num_uses") if call.get("num_uses") else role.secret_id_num_uses
        role.secret_ids[value] = SecretId(
            accessor=str(uuid.uuid4()),
            created=call.now,
            ttl=ttl,
            uses_left=uses,
            metadata={str(k): str(v) for k, v in (metadata or {}).items()},
            cidr_list=string_list(call.get("cidr_list")),
            token_bound_cidrs=string_list(call.get("token_bound_cidrs")),
        )
        data = {
            "secret_id": value,
            "secret_id_accessor": role.secret_ids[value].accessor,
            "secret_id_ttl": ttl,
            "secret_id_num_uses": uses,
        }
        return json_response(200, envelope(data))

    def list_secret_ids(self, call: Call) -> Response:
        role = self._role(call)
        keys = sorted(secret.accessor for secret in role.secret_ids.values() if not secret.expired(call.now))
        return error_response(404) if not keys else json_response(200, envelope({"keys": keys}))

    def login(self, call: Call) -> Response:
        role_id = call.get("role_id")
        if not role_id:
            raise VaultError(400, "missing role_id")
        role = next((role for role in self.roles.values() if role.role_id == role_id), None)
        if role is None:
            raise VaultError(400, INVALID_CREDENTIALS)
        metadata = {"role_name": role.name}
        if role.bind_secret_id:
            secret = role.secret_ids.get(str(call.get("secret_id") or ""))
            if secret is None or secret.expired(call.now):
                raise VaultError(400, INVALID_CREDENTIALS)
            if secret.uses_left:
                secret.uses_left -= 1
                secret.last_updated = call.now
                if secret.uses_left == 0:
                    role.secret_ids.pop(str(call.get("secret_id")))
            metadata.update(secret.metadata)
        return self.issue_login(call, role, metadata=metadata, display_name="", alias=role.role_id)
