"""Bearer tokens with RBAC-like rules, and the per-token partitions tests inject.

A token names a user (``system:serviceaccount:<ns>:<name>``) and a list of ``Rule``s, each like one
rule of an RBAC Role: API groups, resources, verbs, optional ``resourceNames`` and, optionally, the one
namespace the Role lives in. As in the RBAC authorizer, a rule with ``resourceNames`` never grants
``create`` or ``list``: those requests carry no name (kubernetes.io/docs/reference/access-authn-authz/
rbac/#referring-to-resources), which is why a Role limited by name cannot create its Lease.

A partition cuts one token off from the API, as a leader on the wrong side of a network split sees
it: ``error`` answers every request with a status (503 by default), ``drop`` closes the connection
without an answer, ``hang`` holds the request until the partition heals (or ``hang_limit`` passes),
then drops it.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
PARTITION_MODES = ("error", "drop", "hang")


@dataclass(frozen=True)
class Rule:
    verbs: tuple[str, ...]
    resources: tuple[str, ...]
    api_groups: tuple[str, ...] = ("*",)
    resource_names: tuple[str, ...] = ()
    namespace: str | None = None  # None: every namespace (a ClusterRole bound cluster-wide)

    def allows(self, verb: str, group: str, resource: str, namespace: str, name: str) -> bool:
        return (
            _has(self.verbs, verb)
            and _has(self.api_groups, group)
            and _has(self.resources, resource)
            and (self.namespace is None or self.namespace == namespace)
            and (not self.resource_names or (bool(name) and name in self.resource_names))
        )

    @classmethod
    def from_json(cls, payload: Any) -> Rule:
        if not isinstance(payload, dict):
            raise ValueError("a rule must be a JSON object")

        def strings(key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
            value = payload.get(key)
            if value is None:
                return default
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"rule field {key!r} must be a list of strings")
            return tuple(value)

        verbs = strings("verbs")
        resources = strings("resources")
        if not verbs or not resources:
            raise ValueError("a rule needs 'verbs' and 'resources'")
        namespace = payload.get("namespace")
        return cls(
            verbs,
            resources,
            strings("apiGroups", ("*",)),
            strings("resourceNames"),
            str(namespace) if namespace else None,
        )


ALL_ACCESS = (Rule(("*",), ("*",)),)


def _has(allowed: tuple[str, ...], value: str) -> bool:
    return "*" in allowed or value in allowed


@dataclass(frozen=True)
class Identity:
    user: str
    rules: tuple[Rule, ...]

    def may(self, verb: str, group: str, resource: str, namespace: str, name: str) -> bool:
        return any(rule.allows(verb, group, resource, namespace, name) for rule in self.rules)


@dataclass
class Partition:
    mode: str
    status: int = 503
    healed: threading.Event = field(default_factory=threading.Event)
    held: int = 0  # requests a "hang" partition holds right now (tests wait for them)


class AccessControl:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._tokens: dict[str, Identity] = {}
        self._partitions: dict[str, Partition] = {}

    def add_token(self, user: str, rules: tuple[Rule, ...] = ALL_ACCESS, token: str | None = None) -> str:
        if not user:
            raise ValueError("a token needs a user name")
        token = token or secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = Identity(user, tuple(rules))
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            del self._tokens[token]

    def identity(self, token: str) -> Identity | None:
        with self._lock:
            return self._tokens.get(token)

    def partition(self, token: str, mode: str, status: int = 503) -> None:
        if mode not in PARTITION_MODES:
            raise ValueError(f"partition mode must be one of {', '.join(PARTITION_MODES)}, not {mode!r}")
        with self._lock:
            previous = self._partitions.pop(token, None)
            self._partitions[token] = Partition(mode, status)
        if previous is not None:
            previous.healed.set()

    def heal(self, token: str | None = None) -> None:
        """End the partition of ``token`` (every partition when ``None``); hung requests are dropped."""
        with self._lock:
            if token is None:
                healed = list(self._partitions.values())
                self._partitions.clear()
            else:
                found = self._partitions.pop(token, None)
                healed = [found] if found is not None else []
        for partition in healed:
            partition.healed.set()

    def partition_of(self, token: str) -> Partition | None:
        with self._lock:
            return self._partitions.get(token)
