"""``sys/health``, ``sys/seal-status``, ``sys/seal`` and ``sys/unseal``.

Health codes as Vault's ``http/sys_health.go``: 200 active and unsealed, 503 sealed, with the
``activecode`` and ``sealedcode`` query overrides (the node is always an initialised
active node, so the standby, DR and uninit codes never apply); HEAD answers the
same status without a body. The emulator is one active node with a single-share Shamir seal:
``sys/unseal`` with any non-empty ``key`` unseals, ``reset: true`` only resets progress.
``sys/seal`` needs a root or sudo token (204). While sealed every other path answers 503
``{"errors":["Vault is sealed"]}`` (the server checks before routing).
"""

from __future__ import annotations

from typing import Any

from syncd.devstack.httpkit import Request, Response
from syncd.devstack.vault.routing import READ, WRITE, Call, LogicalRouter
from syncd.devstack.vault.state import VaultState
from syncd.devstack.vault.wire import VaultError, error_response, json_response, no_content, parse_bool

VAULT_VERSION = "1.17.0"
SEALED_MESSAGE = "Vault is sealed"


def health_response(state: VaultState, request: Request) -> Response:
    def code(name: str, default: int) -> int:
        value = request.query_value(name)
        try:
            return int(value) if value else default
        except ValueError:
            return default

    status = code("sealedcode", 503) if state.sealed else code("activecode", 200)
    body: dict[str, Any] = {
        "initialized": True,
        "sealed": state.sealed,
        "standby": state.sealed,
        "performance_standby": False,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": int(state.clock.now()),
        "version": VAULT_VERSION,
        "enterprise": False,
        "echo_duration_ms": 0,
        "clock_skew_ms": 0,
    }
    if not state.sealed:
        body.update({"cluster_name": state.cluster_name, "cluster_id": state.cluster_id})
    response = json_response(status, body)
    if request.method == "HEAD":
        response.body = b""
        response.headers.pop("Content-Type", None)
    return response


def seal_status(state: VaultState) -> dict[str, Any]:
    status: dict[str, Any] = {
        "type": "shamir",
        "initialized": True,
        "sealed": state.sealed,
        "t": 1,
        "n": 1,
        "progress": 0,
        "nonce": "",
        "version": VAULT_VERSION,
        "build_date": "2024-06-10T10:11:34Z",
        "migration": False,
        "recovery_seal": False,
        "storage_type": "inmem",
    }
    if not state.sealed:
        status.update({"cluster_name": state.cluster_name, "cluster_id": state.cluster_id})
    return status


def register_seal_routes(router: LogicalRouter, state: VaultState) -> None:
    def health(call: Call) -> Response:
        return health_response(state, call.request)

    def status(call: Call) -> Response:
        return json_response(200, seal_status(state))

    def seal(call: Call) -> Response:
        state.sealed = True
        return no_content()

    def unseal(call: Call) -> Response:
        if parse_bool(call.get("reset")):
            return json_response(200, seal_status(state))
        if not call.get("key"):
            raise VaultError(400, "'key' must be specified in request body as JSON, or 'reset' set to true")
        state.sealed = False
        return json_response(200, seal_status(state))

    router.add([READ, "head"], "sys/health", health, unauthenticated=True)
    router.add([READ], "sys/seal-status", status, unauthenticated=True)
    router.add([WRITE], "sys/seal", seal, sudo=True)
    router.add([WRITE], "sys/unseal", unseal, unauthenticated=True)


SEALED_OK_PATHS = frozenset({"sys/health", "sys/seal-status", "sys/unseal", "sys/init", "sys/leader"})


def sealed_response() -> Response:
    return error_response(503, SEALED_MESSAGE)
