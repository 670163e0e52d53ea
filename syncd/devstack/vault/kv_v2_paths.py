"""HTTP shapes of the KV v2 paths: data, metadata, subkeys, delete/undelete/destroy, config.

PATCH on ``data/`` applies an RFC 7386 JSON merge patch to the current version (404 when the key
or its current version is missing, deleted or destroyed) and writes a new version; PATCH on
``metadata/`` merges into the key's settings and ``custom_metadata``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syncd.devstack.httpkit import Response
from syncd.devstack.vault.routing import DELETE, LIST, PATCH, READ, WRITE, Call
from syncd.devstack.vault.wire import (
    VaultError,
    envelope,
    error_response,
    json_response,
    no_content,
    parse_bool,
    parse_duration,
    parse_int,
    raw_json_response,
)

if TYPE_CHECKING:
    from syncd.devstack.vault.kv_v2 import KeyRecord, KvV2Backend

KEY = r"(?P<key>.*[^/])"
INVALID_PATH_WARNING = (
    "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
    "endpoints to use. If using the Vault CLI, use 'vault kv {verb}' for this operation."
)
_CLI_VERB = {READ: "get", WRITE: "put", LIST: "list", DELETE: "delete", PATCH: "patch"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def _ok(data: Any) -> Response:
    return json_response(200, envelope(data, mount_type="kv"))


def _not_found_with_body(data: Any) -> Response:
    return raw_json_response(404, envelope(data, mount_type=""))


def register_v2_routes(kv: KvV2Backend) -> None:  # noqa: PLR0915 -- one closure per path
    router = kv.router

    def config(call: Call) -> Response:
        if call.operation == READ:
            return _ok(kv.config.describe())
        if "max_versions" in call.data:
            kv.config.max_versions = parse_int(call.get("max_versions"), "max_versions")
        if "cas_required" in call.data:
            kv.config.cas_required = parse_bool(call.get("cas_required"))
        if "delete_version_after" in call.data:
            kv.config.delete_version_after = parse_duration(call.get("delete_version_after"), "delete_version_after")
        return no_content()

    def read_version(call: Call, record: KeyRecord | None, field: str, content: Callable[[Any], Any]) -> Response:
        """``{field: content(version), metadata}`` of ``?version=`` (else the current one).

        404 without a body when the key or version is missing; 404 with the body (``field``
        null) when that version is deleted or destroyed.
        """
        if record is None:
            return error_response(404)
        number = parse_int(call.get("version"), "version") or record.current_version
        version = record.versions.get(number)
        if version is None:
            return error_response(404)
        body = {field: None, "metadata": kv.version_metadata(record, number, version)}
        if version.destroyed or version.deleted(call.now):
            return _not_found_with_body(body)
        body[field] = content(version)
        return _ok(body)

    def data(call: Call) -> Response:
        key = call.params["key"]
        record = kv.keys.get(key)
        if call.operation == READ:
            return read_version(call, record, "data", lambda version: version.data)
        if call.operation == DELETE:
            if record is not None and record.current_version in record.versions:
                kv.mark_versions(key, [record.current_version], "delete", call.now)
            return no_content()
        if call.operation == PATCH:
            return patch_data(call, key, record)
        payload = call.get("data")
        if not isinstance(payload, dict):
            raise VaultError(400, "no data provided")
        kv.check_cas(record or _empty_record(), call.get("options"))
        return write_response(*kv.add_version(key, payload, call.now))

    def patch_data(call: Call, key: str, record: KeyRecord | None) -> Response:
        patch = call.get("data")
        if not isinstance(patch, dict):
            raise VaultError(400, "no data provided")
        if record is None:
            return error_response(404)
        kv.check_cas(record, call.get("options"))
        current = record.versions.get(record.current_version)
        if current is None:
            return error_response(404)
        if current.destroyed or current.deleted(call.now):
            return _not_found_with_body(kv.version_metadata(record, record.current_version, current))
        return write_response(*kv.add_version(key, merge_patch(current.data, patch), call.now))

    def write_response(number: int, version: Any, record: KeyRecord) -> Response:
        return _ok(kv.version_metadata(record, number, version))

    def metadata(call: Call) -> Response:
        key = call.params["key"]
        record = kv.keys.get(key)
        if call.operation == READ:
            return error_response(404) if record is None else _ok(kv.key_metadata(record))
        if call.operation == DELETE:
            kv.keys.pop(key, None)
            return no_content()
        if call.operation == PATCH and record is None:
            return error_response(404)
        record = kv.keys.setdefault(key, _empty_record())
        apply_metadata(record, call.data, patch=call.operation == PATCH, now=call.now)
        return no_content()

    def list_metadata(call: Call) -> Response:
        keys = kv.list_metadata(call.params.get("prefix", ""))
        return error_response(404) if not keys else _ok({"keys": keys})

    def subkeys(call: Call) -> Response:
        def content(version: Any) -> Any:  # depth parsed only for a live version, as before
            return _subkeys(version.data or {}, parse_int(call.get("depth"), "depth"))

        return read_version(call, kv.keys.get(call.params["key"]), "subkeys", content)

    def versions_action(action: str) -> Any:
        def handle(call: Call) -> Response:
            versions = call.get("versions")
            if not versions:
                raise VaultError(400, "no version number provided")
            numbers = [parse_int(item, "versions") for item in _as_list(versions)]
            kv.mark_versions(call.params["key"], numbers, action, call.now)
            return no_content()

        return handle

    def invalid_path(call: Call) -> Response:
        warning = INVALID_PATH_WARNING.format(verb=_CLI_VERB.get(call.operation, "get"))
        return _not_found_with_body_warning(warning)

    router.add([READ, WRITE], "config", config)
    router.add([READ, WRITE, DELETE, PATCH], "data/" + KEY, data)
    router.add([LIST], r"metadata/(?P<prefix>(?:.*/)?)", list_metadata)
    router.add([READ, WRITE, DELETE, PATCH], "metadata/" + KEY, metadata)
    router.add([READ], "subkeys/" + KEY, subkeys)
    for action in ("delete", "undelete", "destroy"):
        router.add([WRITE], f"{action}/" + KEY, versions_action(action))
    router.add([READ, WRITE, LIST, DELETE, PATCH], r".*", invalid_path)


def _not_found_with_body_warning(warning: str) -> Response:
    return raw_json_response(404, envelope(None, warnings=[warning], mount_type=""))


def _empty_record() -> KeyRecord:
    from syncd.devstack.vault.kv_v2 import KeyRecord  # noqa: PLC0415 -- avoids an import cycle

    return KeyRecord()


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [part for part in str(value).split(",") if part.strip()]


def _subkeys(data: dict[str, Any], depth: int, level: int = 1) -> dict[str, Any]:
    """The key structure with every leaf value replaced by null; depth 0 means unlimited."""
    result: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, dict) and value and (depth == 0 or level < depth):
            result[name] = _subkeys(value, depth, level + 1)
        else:
            result[name] = None
    return result


def apply_metadata(record: KeyRecord, data: dict[str, Any], *, patch: bool, now: float) -> None:
    if "max_versions" in data:
        record.max_versions = parse_int(data["max_versions"], "max_versions")
    if "cas_required" in data:
        record.cas_required = parse_bool(data["cas_required"])
    if "delete_version_after" in data:
        record.delete_version_after = parse_duration(data["delete_version_after"], "delete_version_after")
    if "custom_metadata" in data:
        custom = data["custom_metadata"]
        if patch:
            merged = merge_patch(record.custom_metadata or {}, custom or {})
            record.custom_metadata = {str(k): str(v) for k, v in merged.items()} or None
        elif custom is not None:
            if not isinstance(custom, dict):
                raise VaultError(400, "custom_metadata must be a map")
            record.custom_metadata = {str(k): str(v) for k, v in custom.items()}
    if record.created_time is None:
        record.created_time = now
    record.updated_time = now
