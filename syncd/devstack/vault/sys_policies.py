"""ACL policy management: ``sys/policies/acl/<name>`` and the older ``sys/policy/<name>``.

Names are lower-cased. ``root`` is listed but cannot be read, written or deleted; ``default``
cannot be deleted. The old endpoint answers with ``rules`` (and the modern with ``policy``); the
old listing returns both ``keys`` and ``policies`` and repeats ``data`` at the top level.
"""

from __future__ import annotations

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.policy import parse_policy
from syncd.devstack.vault.routing import DELETE, LIST, READ, WRITE, Call, LogicalRouter
from syncd.devstack.vault.state import VaultState
from syncd.devstack.vault.wire import VaultError, envelope, error_response, json_response, no_content


def _with_top_level(data: dict[str, object]) -> Response:
    body = envelope(data)
    return json_response(200, {**body["data"], **body})


def register_policy_routes(router: LogicalRouter, state: VaultState) -> None:
    def names() -> list[str]:
        return sorted({*state.policies, "root"})

    def write(name: str, text: object) -> Response:
        if name == "root":
            raise VaultError(400, 'cannot update "root" policy')
        if not isinstance(text, str) or not text.strip():
            raise VaultError(400, "'policy' parameter not supplied or empty")
        parse_policy(text)
        state.policies[name] = text
        return no_content()

    def delete(name: str) -> Response:
        if name in ("root", "default"):
            raise VaultError(400, f'cannot delete "{name}" policy')
        state.policies.pop(name, None)
        return no_content()

    def acl_list(call: Call) -> Response:
        return json_response(200, envelope({"keys": names()}))

    def acl_policy(call: Call) -> Response:
        name = call.params["name"].lower()
        if call.operation == READ:
            if name not in state.policies:
                return error_response(404)
            return json_response(200, envelope({"name": name, "policy": state.policies[name]}))
        if call.operation == DELETE:
            return delete(name)
        return write(name, call.get("policy"))

    def legacy_list(call: Call) -> Response:
        return _with_top_level({"keys": names(), "policies": names()})

    def legacy_policy(call: Call) -> Response:
        name = call.params["name"].lower()
        if call.operation == READ:
            if name not in state.policies:
                return error_response(404)
            return _with_top_level({"name": name, "rules": state.policies[name]})
        if call.operation == DELETE:
            return delete(name)
        return write(name, call.get("policy", call.get("rules")))

    router.add([LIST], r"sys/policies/acl/?", acl_list)
    router.add([READ, WRITE, DELETE], r"sys/policies/acl/(?P<name>[^/]+)", acl_policy)
    router.add([READ, LIST], r"sys/policy/?", legacy_list)
    router.add([READ, WRITE, DELETE], r"sys/policy/(?P<name>[^/]+)", legacy_policy)
