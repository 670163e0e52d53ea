"""AppRole secret-id management: assign, look up and destroy secret ids, by value or by accessor.

Paths under ``auth/<mount>/role/<name>/``, all ``POST`` (destroy also ``DELETE``), as in
hashicorp/vault ``builtin/credential/approle/path_role.go`` (``pathRoleSecretIDLookupUpdate``,
``pathRoleSecretIDDestroyUpdateDelete``, ``pathRoleSecretIDAccessorLookupUpdate``,
``pathRoleSecretIDAccessorDestroyUpdateDelete``, ``pathRoleCustomSecretIDUpdate``) and the
``vault write`` examples of the AppRole API docs; hvac's ``create_custom_secret_id``,
``read_secret_id``, ``destroy_secret_id``, ``read_secret_id_accessor`` and
``destroy_secret_id_accessor`` send exactly these bodies.

- ``custom-secret-id`` ``{"secret_id", "metadata"?, "ttl"?, "num_uses"?, "cidr_list"?,
  "token_bound_cidrs"?}``: 200 with the same data as ``secret-id``; a secret id the role already
  holds is 500 ``failed to store secret_id: SecretID is already registered`` (a Go error, so the
  go-multierror text).
- ``secret-id/lookup`` ``{"secret_id"}``: 200 with ``secret_id_accessor``, ``secret_id_num_uses``
  (uses left), ``secret_id_ttl``, ``creation_time``, ``expiration_time`` (Go's zero time when it
  never expires), ``last_updated_time``, ``metadata``, ``cidr_list``, ``token_bound_cidrs``; an
  unknown secret id is 204 (the handler returns no response).
- ``secret-id/destroy`` ``{"secret_id"}``: 204, known or not.
- ``secret-id-accessor/lookup`` ``{"secret_id_accessor"}``: 200 as above; unknown is 404 with the
  handler's own body ``{..., "data": {"error": "failed to find accessor entry for
  secret_id_accessor: \\"<accessor>\\""}}`` (``logical.RespondWithStatusCode``, Vault >= 1.9).
- ``secret-id-accessor/destroy`` ``{"secret_id_accessor"}``: 204; unknown is 500 with that text.
- A missing ``secret_id`` / ``secret_id_accessor`` is 400 ``missing secret_id`` /
  ``missing secret_id_accessor``; an unknown role is 500 ``role "<name>" does not exist``.

Simplification: an expired secret id is treated as gone at once (Vault keeps it until its tidy
runs); ``LIST role/<name>/secret-id`` (the accessors) is in ``approle``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.auth_backend import ROLE
from syncd.devstack.vault.routing import DELETE, WRITE, Call
from syncd.devstack.vault.wire import (
    VaultError,
    envelope,
    json_response,
    multi_error,
    no_content,
    raw_json_response,
    rfc3339,
)

if TYPE_CHECKING:
    from syncd.devstack.vault.approle import AppRole, AppRoleBackend, SecretId

GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def register_secret_id_routes(backend: AppRoleBackend) -> None:
    routes = _SecretIdRoutes(backend)
    router = backend.router
    router.add([WRITE], ROLE + "/custom-secret-id", routes.custom)
    router.add([WRITE], ROLE + "/secret-id/lookup", routes.lookup)
    router.add([WRITE, DELETE], ROLE + "/secret-id/destroy", routes.destroy)
    router.add([WRITE], ROLE + "/secret-id-accessor/lookup", routes.lookup_accessor)
    router.add([WRITE, DELETE], ROLE + "/secret-id-accessor/destroy", routes.destroy_accessor)


class _SecretIdRoutes:
    def __init__(self, backend: AppRoleBackend) -> None:
        self.backend = backend

    def _role(self, call: Call) -> AppRole:
        role = self.backend.roles.get(call.params["name"].lower())
        if role is None:
            raise VaultError(500, multi_error(f'role "{call.params["name"]}" does not exist'))
        return role

    @staticmethod
    def _required(call: Call, name: str) -> str:
        value = call.get(name)
        if not value:
            raise VaultError(400, f"missing {name}")
        return str(value)

    def custom(self, call: Call) -> Response:
        value = self._required(call, "secret_id")
        role = self._role(call)
        if value in role.secret_ids and not role.secret_ids[value].expired(call.now):
            raise VaultError(500, multi_error("failed to store secret_id: SecretID is already registered"))
        return self.backend.issue_secret_id(role, value, call)

    def lookup(self, call: Call) -> Response:
        value = self._required(call, "secret_id")
        found = _live(self._role(call), call, lambda secret_id, _: secret_id == value)
        return no_content() if found is None else _described(found[1])

    def destroy(self, call: Call) -> Response:
        value = self._required(call, "secret_id")
        self._role(call).secret_ids.pop(value, None)
        return no_content()

    def lookup_accessor(self, call: Call) -> Response:
        accessor = self._required(call, "secret_id_accessor")
        found = _live(self._role(call), call, lambda _, entry: entry.accessor == accessor)
        if found is None:
            return raw_json_response(404, envelope({"error": _no_accessor(accessor)}))
        return _described(found[1])

    def destroy_accessor(self, call: Call) -> Response:
        accessor = self._required(call, "secret_id_accessor")
        role = self._role(call)
        found = _live(role, call, lambda _, entry: entry.accessor == accessor)
        if found is None:
            raise VaultError(500, multi_error(_no_accessor(accessor)))
        del role.secret_ids[found[0]]
        return no_content()


def _live(role: AppRole, call: Call, match: Any) -> tuple[str, SecretId] | None:
    return next(
        (
            (value, entry)
            for value, entry in role.secret_ids.items()
            if match(value, entry) and not entry.expired(call.now)
        ),
        None,
    )


def _no_accessor(accessor: str) -> str:
    return f'failed to find accessor entry for secret_id_accessor: "{accessor}"'


def _described(entry: SecretId) -> Response:
    expires = GO_ZERO_TIME if entry.ttl <= 0 else rfc3339(entry.created + entry.ttl)
    data = {
        "secret_id_accessor": entry.accessor,
        "secret_id_num_uses": entry.uses_left,
        "secret_id_ttl": entry.ttl,
        "creation_time": rfc3339(entry.created),
        "expiration_time": expires,
        "last_updated_time": rfc3339(entry.last_updated if entry.last_updated is not None else entry.created),
        "metadata": dict(entry.metadata),
        "cidr_list": list(entry.cidr_list),
        "token_bound_cidrs": list(entry.token_bound_cidrs),
    }
    return json_response(200, envelope(data))
