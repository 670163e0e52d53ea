"""Logical requests and the small router every Vault backend uses.

Vault turns an HTTP request into a *logical* request: an operation (read, list, create, update,
delete, patch) on a path below ``/v1/``. Backends (KV, AppRole, Kubernetes, the token store,
``sys/``) route on the path relative to their mount and on the operation. Writes are routed as
``"write"`` and only become ``create`` or ``update`` for the ACL, through the backend's
existence check, as in Vault's ``framework.Backend``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from syncd.devstack.httpkit import Request, Response
from syncd.devstack.vault.wire import UNSUPPORTED_OPERATION, VaultError, multi_error

if TYPE_CHECKING:
    from syncd.devstack.vault.tokens import Token

READ, LIST, WRITE, DELETE, PATCH = "read", "list", "write", "delete", "patch"


@dataclass
class Call:
    """One logical request, as a backend sees it."""

    operation: str  # read | list | write | delete | patch
    path: str  # relative to the backend's mount
    full_path: str  # the whole logical path (after /v1/)
    data: dict[str, Any]
    request: Request
    now: float
    token: Token | None = None
    mount_path: str = ""
    params: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)


LogicalHandler = Callable[[Call], Response]


@dataclass(frozen=True)
class _Route:
    operations: frozenset[str]
    pattern: re.Pattern[str]
    handler: LogicalHandler
    unauthenticated: bool
    sudo: bool


class LogicalRouter:
    """Routes (operation, relative path) to handlers; regex named groups become ``Call.params``."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def add(
        self,
        operations: Iterable[str],
        pattern: str,
        handler: LogicalHandler,
        *,
        unauthenticated: bool = False,
        sudo: bool = False,
    ) -> None:
        self._routes.append(_Route(frozenset(operations), re.compile(pattern + r"\Z"), handler, unauthenticated, sudo))

    def match(self, operation: str, path: str) -> tuple[_Route, dict[str, str]]:
        """The first route whose pattern matches decides, as in Vault's ``framework.Backend``.

        Its operations not including this one is 405 ``unsupported operation``.
        """
        for route in self._routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if operation not in route.operations:
                raise VaultError(405, multi_error(UNSUPPORTED_OPERATION))
            return route, {k: v for k, v in found.groupdict().items() if v is not None}
        raise RouteNotFound(path)


def client_token_id(request: Request) -> str | None:
    """The client token: ``X-Vault-Token``, else ``Authorization: Bearer``."""
    token = request.header("x-vault-token")
    if token:
        return token
    authorization = request.header("authorization") or ""
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None


class RouteNotFound(Exception):
    """No route for the path: Vault answers 404 ``no handler for route``."""


class Backend(Protocol):
    """What a mounted engine or auth method provides."""

    router: LogicalRouter
    mount_type: str

    def exists(self, call: Call) -> bool | None:
        """Existence check for writes: True -> update, False -> create, None -> update (no check)."""
        ...
