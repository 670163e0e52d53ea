"""The skeleton every auth method shares: role storage, the ``role/`` and ``login`` routes.

An auth backend keeps its roles by lower-cased name. ``LIST role/`` answers the names (404 when
there are none); ``role/<name>`` reads (404 when missing), deletes (204 either way) or writes it,
the write being each method's own (``write_role``). ``login`` is unauthenticated and answers with
``auth_common.login_response``. Methods with a ``config`` endpoint (Kubernetes, JWT) add it
through ``ConfiguredAuthBackend``: a read before any write is 404.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.auth_common import TokenSettings, login_response
from syncd.devstack.vault.kv_v1 import list_children
from syncd.devstack.vault.routing import DELETE, LIST, READ, WRITE, Call, LogicalRouter
from syncd.devstack.vault.wire import envelope, error_response, json_response, no_content

if TYPE_CHECKING:
    from syncd.devstack.vault.state import VaultState

ROLE = r"role/(?P<name>[^/]+)"


class AuthRole(Protocol):
    name: str
    token: TokenSettings

    def describe(self) -> dict[str, Any]: ...


RoleT = TypeVar("RoleT", bound=AuthRole)


class AuthBackend(ABC, Generic[RoleT]):
    mount_type: str

    def __init__(self, state: VaultState) -> None:
        self.state = state
        self.roles: dict[str, RoleT] = {}
        self.router = LogicalRouter()
        self.router.add([LIST], r"role/?", self.list_roles)
        self.router.add([READ, WRITE, DELETE], ROLE, self.role)
        self.router.add([WRITE], "login", self.login, unauthenticated=True)

    def exists(self, call: Call) -> bool | None:
        if call.path.startswith("role/") and call.path.count("/") == 1:
            return call.path.split("/")[1].lower() in self.roles
        return None

    def list_roles(self, call: Call) -> Response:
        keys = list_children(list(self.roles), "")
        return error_response(404) if not keys else json_response(200, envelope({"keys": keys}))

    def role(self, call: Call) -> Response:
        name = call.params["name"].lower()
        if call.operation == READ:
            found = self.roles.get(name)
            return error_response(404) if found is None else json_response(200, envelope(found.describe()))
        if call.operation == DELETE:
            self.roles.pop(name, None)
            return no_content()
        self.write_role(name, call)
        return no_content()

    @abstractmethod
    def write_role(self, name: str, call: Call) -> None:
        """Create or update role ``name`` from ``call.data`` (raising ``VaultError`` when invalid)."""

    @abstractmethod
    def login(self, call: Call) -> Response: ...

    def issue_login(
        self, call: Call, role: RoleT, *, metadata: dict[str, str], display_name: str, alias: str
    ) -> Response:
        return login_response(
            self.state,
            mount_path=call.mount_path,
            settings=role.token,
            metadata=metadata,
            display_name=display_name,
            alias=alias,
            now=call.now,
        )


class ConfiguredAuthBackend(AuthBackend[RoleT]):
    """An auth method with a ``config`` endpoint, unset (``None``) until first written."""

    def __init__(self, state: VaultState) -> None:
        super().__init__(state)
        self.config: dict[str, Any] | None = None
        self.router.add([READ, WRITE], "config", self.handle_config)

    def exists(self, call: Call) -> bool | None:
        if call.path == "config":
            return self.config is not None
        return super().exists(call)

    def handle_config(self, call: Call) -> Response:
        if call.operation == READ:
            if self.config is None:
                return error_response(404)
            return json_response(200, envelope(self.describe_config(self.config)))
        self.config = self.parse_config(call)
        return no_content()

    @abstractmethod
    def describe_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """What a read of ``config`` shows of the stored config."""

    @abstractmethod
    def parse_config(self, call: Call) -> dict[str, Any]:
        """The new config from a write (raising ``VaultError`` when invalid)."""
