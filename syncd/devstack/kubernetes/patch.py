"""The PATCH bodies the API server accepts for Leases and Secrets.

- ``application/merge-patch+json``: RFC 7386 (objects merge, ``null`` deletes, anything else replaces).
- ``application/strategic-merge-patch+json``: for Leases and Secrets it is the same as a merge
  patch: neither type has a list with a patch merge key, so strategic merge degenerates to RFC 7386
  (``$patch`` directives are not emulated).
- ``application/json-patch+json``: RFC 6902 (add, remove, replace, move, copy, test). A JSON object
  instead of an array is answered 400 with Go's decoding message. The official Python client picks
  ``json-patch+json`` for every patch (``select_header_content_type``) and then, in ``rest.py``,
  switches a non-list body to ``strategic-merge-patch+json``; so a dict is a strategic merge patch and
  a list a JSON patch, unless the caller passes ``_content_type``.
- ``application/apply-patch+yaml`` (server-side apply) is not emulated: 415, listing the others.
"""

from __future__ import annotations

import copy
from typing import Any

from syncd.devstack.kubernetes.status import StatusError, bad_request, unsupported_media_type


def _unappliable(why: str) -> StatusError:
    # patch.go answers a JSON patch that decodes but does not apply with
    # NewGenericServerResponse(422, ...): reason Invalid, a generic message, empty details.
    del why  # the Go error text goes to the server log, not the body
    return StatusError(422, "Invalid", "the server rejected our request due to an error in our request", {})


MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
ACCEPTED_PATCH_TYPES = [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH]


def apply_patch(content_type: str, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The patched copy of ``target``; raises ``StatusError`` for a bad or unknown patch."""
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media_type in (MERGE_PATCH, STRATEGIC_MERGE_PATCH):
        if not isinstance(patch, dict):
            raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
        merged = merge_patch(target, patch)
        assert isinstance(merged, dict)
        return merged
    if media_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        return _json_patch(target, patch)
    raise unsupported_media_type(media_type, ACCEPTED_PATCH_TYPES)


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"jsonpatch: invalid path {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(document: Any, parts: list[str]) -> tuple[Any, str]:
    node = document
    for part in parts[:-1]:
        node = _child(node, part)
    return node, parts[-1]


def _child(node: Any, key: str) -> Any:
    if isinstance(node, dict) and key in node:
        return node[key]
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        return node[int(key)]
    raise _unappliable(f"missing path element {key!r}")


def _get(document: Any, path: str) -> Any:
    node = document
    for part in _pointer(path):
        node = _child(node, part)
    return node


def _add(document: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent, key = _parent(document, parts)
    if isinstance(parent, dict):
        parent[key] = copy.deepcopy(value)
    elif isinstance(parent, list):
        index = len(parent) if key == "-" else int(key) if key.isdigit() else -1
        if not 0 <= index <= len(parent):
            raise _unappliable(f"add operation does not apply: index {key!r} out of bounds")
        parent.insert(index, copy.deepcopy(value))
    else:
        raise _unappliable(f"add operation does not apply: doc is missing path: {path!r}")
    return document


def _remove(document: Any, path: str) -> Any:
    parts = _pointer(path)
    parent, key = _parent(document, parts)
    _child(parent, key)  # raises when missing
    if isinstance(parent, dict):
        del parent[key]
    else:
        del parent[int(key)]
    return document


def _json_patch(target: dict[str, Any], operations: list[Any]) -> dict[str, Any]:
    document: Any = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise bad_request("jsonpatch: every operation needs 'op' and 'path'")
        op, path = operation["op"], str(operation["path"])
        if op == "add":
            document = _add(document, path, operation.get("value"))
        elif op == "remove":
            document = _remove(document, path)
        elif op == "replace":
            _get(document, path)
            document = _add(_remove(document, path), path, operation.get("value")) if path else operation["value"]
        elif op in ("move", "copy"):
            value = copy.deepcopy(_get(document, str(operation.get("from", ""))))
            if op == "move":
                document = _remove(document, str(operation["from"]))
            document = _add(document, path, value)
        elif op == "test":
            if _get(document, path) != operation.get("value"):
                raise _unappliable(f"testing value {path} failed: test failed")
        else:
            raise bad_request(f"Unexpected kind: {op}")
    if not isinstance(document, dict):
        raise bad_request("the patched object is not a JSON object")
    return document
