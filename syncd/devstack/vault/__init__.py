"""A HashiCorp Vault HTTP API emulator for tests and local runs.

``VaultEmulator(host, port, root_token, clock)`` serves KV v2 at ``secret/`` and KV v1 at ``kv/``,
tokens and ACL policies, ``sys/mounts``, ``sys/auth`` with AppRole and Kubernetes auth, health
and seal endpoints, on top of :mod:`syncd.devstack.httpkit` (request log, fault injection and a
settable clock at ``/__devstack/...``). Each module's docstring says what was verified against
Vault's sources and what is an emulator shortcut.
"""

from syncd.devstack.vault.server import VaultEmulator

__all__ = ["VaultEmulator"]
