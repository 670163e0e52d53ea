"""The KV version 1 secrets engine: one unversioned map per path.

A read answers with ``lease_duration`` = the mount's default TTL (2764800, 32 days) or, as the
real passthrough backend does, the secret's own ``ttl`` field when it has one. Writes, deletes
answer 204; a list of an empty or missing folder is 404.
"""

from __future__ import annotations

from typing import Any

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.routing import DELETE, LIST, READ, WRITE, Call, LogicalRouter
from syncd.devstack.vault.tokens import SYSTEM_DEFAULT_TTL
from syncd.devstack.vault.wire import (
    VaultError,
    envelope,
    error_response,
    json_response,
    no_content,
    parse_duration,
)


def list_children(names: list[str], prefix: str) -> list[str]:
    """Direct children of ``prefix`` among ``names``: leaf names and ``folder/`` entries, sorted."""
    children: set[str] = set()
    for name in names:
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :]
        if not rest:
            continue
        head, slash, _ = rest.partition("/")
        children.add(head + "/" if slash else head)
    return sorted(children)


class KvV1Backend:
    mount_type = "kv"

    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, Any]] = {}
        self.router = LogicalRouter()
        self.router.add([LIST], r"(?P<prefix>(?:.*/)?)", self.list_keys)
        self.router.add([READ, WRITE, DELETE], r"(?P<key>.*[^/])", self.handle_key)

    def exists(self, call: Call) -> bool | None:
        return call.path in self.secrets

    def handle_key(self, call: Call) -> Response:
        key = call.params["key"]
        if call.operation == READ:
            stored = self.secrets.get(key)
            if stored is None:
                return error_response(404)
            lease = parse_duration(stored["ttl"], "ttl") if "ttl" in stored else SYSTEM_DEFAULT_TTL
            return json_response(200, envelope(stored, lease_duration=lease, mount_type="kv"))
        if call.operation == WRITE:
            if not call.data:
                raise VaultError(400, "missing data fields")
            self.secrets[key] = dict(call.data)
            return no_content()
        self.secrets.pop(key, None)
        return no_content()

    def list_keys(self, call: Call) -> Response:
        keys = list_children(list(self.secrets), call.params.get("prefix", ""))
        if not keys:
            return error_response(404)
        return json_response(200, envelope({"keys": keys}, mount_type="kv"))
