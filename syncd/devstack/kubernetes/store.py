"""Objects by (resource, namespace, name) under one cluster-wide ``resourceVersion`` counter, like etcd.

Every write that changes an object takes the next revision; a write that changes nothing (the
stored bytes would be equal) is not a write and keeps the ``resourceVersion``, as the etcd3 store's
``GuaranteedUpdate`` does. ``PUT`` with an empty ``resourceVersion`` is an unconditional update
(Leases and Secrets allow it); with a stale one it is 409 Conflict; ``PUT`` of a missing object is 404
(neither type allows create-on-update). ``uid`` and ``creationTimestamp`` are kept from creation.
"""

from __future__ import annotations

import copy
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from syncd.devstack.httpkit import Clock
from syncd.devstack.kubernetes.resources import Kind, check_name, normalize
from syncd.devstack.kubernetes.status import already_exists, bad_request, conflict, not_found

# Status fields the server owns and ignores on input.
_SERVER_FIELDS = ("uid", "creationTimestamp", "resourceVersion", "selfLink", "generation", "managedFields")


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ObjectStore:
    def __init__(self, lock: threading.RLock, clock: Clock, secret_max_bytes: int) -> None:
        self.lock = lock
        self.clock = clock
        self.secret_max_bytes = secret_max_bytes
        self._revision = 1000
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    @property
    def revision(self) -> int:
        with self.lock:
            return self._revision

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            found = self._objects.get((kind.plural, namespace, name))
            if found is None:
                raise not_found(kind.group_resource, name)
            return copy.deepcopy(found)

    def list(self, kind: Kind, namespace: str) -> dict[str, Any]:
        with self.lock:
            items = []
            for (plural, ns, _), obj in sorted(self._objects.items()):
                if plural == kind.plural and ns == namespace:
                    item = copy.deepcopy(obj)
                    item.pop("kind", None)  # list items carry no TypeMeta on the wire
                    item.pop("apiVersion", None)
                    items.append(item)
            return {
                "kind": kind.list_kind,
                "apiVersion": kind.api_version,
                "metadata": {"resourceVersion": str(self._revision)},
                "items": items,
            }

    def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        obj = self._prepared(kind, namespace, body, url_name=None)
        name = obj["metadata"]["name"]
        with self.lock:
            key = (kind.plural, namespace, name)
            normalize(kind, obj, None, self.secret_max_bytes)
            if key in self._objects:
                raise already_exists(kind.group_resource, name)
            obj["metadata"]["uid"] = str(uuid.uuid4())
            obj["metadata"]["creationTimestamp"] = _timestamp(self.clock.now())
            return self._commit(key, obj)

    def replace(self, kind: Kind, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        obj = self._prepared(kind, namespace, body, url_name=name)
        wanted = str(body.get("metadata", {}).get("resourceVersion") or "")
        with self.lock:
            current = self.get(kind, namespace, name)
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise conflict(kind.group_resource, name)
            return self._write(kind, namespace, name, obj, current)

    def patch(self, kind: Kind, namespace: str, name: str, patched: dict[str, Any]) -> dict[str, Any]:
        """Store ``patched`` (the current object with the patch applied by the caller under ``lock``)."""
        with self.lock:
            current = self.get(kind, namespace, name)
            wanted = str(patched.get("metadata", {}).get("resourceVersion") or "")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise conflict(kind.group_resource, name)
            obj = self._prepared(kind, namespace, patched, url_name=name)
            return self._write(kind, namespace, name, obj, current)

    def delete(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            removed = self.get(kind, namespace, name)
            del self._objects[(kind.plural, namespace, name)]
            self._revision += 1
            return removed

    def _prepared(self, kind: Kind, namespace: str, body: dict[str, Any], url_name: str | None) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        if obj.get("apiVersion") not in (None, "", kind.api_version):
            raise bad_request(
                f"the API version in the data ({obj['apiVersion']}) does not match the expected API version "
                f"({kind.api_version})"
            )
        if obj.get("kind") not in (None, "", kind.kind):
            raise bad_request(f"the kind in the data ({obj['kind']}) does not match the expected kind ({kind.kind})")
        metadata = obj.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise bad_request(f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}: metadata')
        name = str(metadata.get("name") or "")
        if url_name is not None and name != url_name:
            raise bad_request(f"the name of the object ({name}) does not match the name on the URL ({url_name})")
        if metadata.get("namespace") not in (None, "", namespace):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        check_name(kind, name)
        for field in _SERVER_FIELDS:
            metadata.pop(field, None)
        metadata["name"] = name
        metadata["namespace"] = namespace
        obj["metadata"] = metadata
        obj["kind"] = kind.kind
        obj["apiVersion"] = kind.api_version
        return obj

    def _write(
        self, kind: Kind, namespace: str, name: str, obj: dict[str, Any], current: dict[str, Any]
    ) -> dict[str, Any]:
        normalize(kind, obj, current, self.secret_max_bytes)
        for field in ("uid", "creationTimestamp"):
            obj["metadata"][field] = current["metadata"][field]
        comparable = copy.deepcopy(current)
        comparable["metadata"].pop("resourceVersion")
        if comparable == obj:
            return current
        return self._commit((kind.plural, namespace, name), obj)

    def _commit(self, key: tuple[str, str, str], obj: dict[str, Any]) -> dict[str, Any]:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        self._objects[key] = obj
        return copy.deepcopy(obj)
