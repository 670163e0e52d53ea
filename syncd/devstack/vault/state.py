"""Everything the Vault emulator holds, behind the one ``RLock`` inherited from httpkit.

Handlers run with ``state.lock`` held for the whole request (the server takes it), so every
read-modify-write (a KV version bump, a token renewal) is atomic.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from syncd.devstack.httpkit import Clock, EmulatorState
from syncd.devstack.vault.auth_common import EntityRegistry
from syncd.devstack.vault.policy import DEFAULT_POLICY, RESPONSE_WRAPPING_POLICY, Acl
from syncd.devstack.vault.routing import Backend
from syncd.devstack.vault.tokens import Token, TokenStore, random_id

# In-tree plugins (approle, database) carry the Vault version; kv is an external builtin.
RUNNING_PLUGIN_VERSIONS = {
    "kv": "v0.20.0+builtin",
    "approle": "v1.17.0+builtin.vault",
    "database": "v1.17.0+builtin.vault",
}


@dataclass
class Mount:
    """A secrets engine (``secret/``) or auth method (``auth/approle/`` is stored as ``approle/``)."""

    path: str  # with trailing slash, without "auth/"
    type: str
    backend: Backend
    description: str = ""
    options: dict[str, str] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    local: bool = False
    seal_wrap: bool = False
    accessor: str = ""
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def describe(self) -> dict[str, Any]:
        """The entry ``sys/mounts``, ``sys/auth`` and ``sys/internal/ui/mounts`` show."""
        config: dict[str, Any] = {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0}
        config.update(self.config)
        return {
            "accessor": self.accessor,
            "config": config,
            "deprecation_status": "supported",
            "description": self.description,
            "external_entropy_access": False,
            "local": self.local,
            "options": self.options,
            "plugin_version": "",
            "running_plugin_version": RUNNING_PLUGIN_VERSIONS.get(self.type, "v0.0.0+builtin"),
            "running_sha256": "",
            "seal_wrap": self.seal_wrap,
            "type": self.type,
            "uuid": self.uuid,
        }


class VaultState(EmulatorState):
    """Mounts, auth methods, policies, tokens and the seal, plus httpkit's log/faults/clock."""

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self.sealed = False
        self.secret_mounts: dict[str, Mount] = {}
        self.auth_mounts: dict[str, Mount] = {}
        self.policies: dict[str, str] = {"default": DEFAULT_POLICY}
        self.tokens = TokenStore()
        self.entities = EntityRegistry()
        self.cluster_id = str(uuid.uuid4())
        self.cluster_name = f"vault-cluster-{random_id(8).lower()}"

    def acl_for(self, token: Token) -> Acl:
        if token.is_root:
            return Acl([], root=True)
        documents = [self.policies[name] for name in token.policies if name in self.policies]
        if token.policies == ["response-wrapping"]:
            documents = [RESPONSE_WRAPPING_POLICY]
        return Acl(documents)

    @staticmethod
    def new_accessor(kind: str) -> str:
        return f"{kind}_{uuid.uuid4().hex[:8]}"
