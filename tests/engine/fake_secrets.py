"""An in-memory stand-in for the Kubernetes Secrets API of one namespace, with a request log.

It keeps to the API's rules that the state store relies on: a PUT whose ``metadata.resourceVersion``
is not the stored one is refused with 409, an unknown name with 404, data over 1 MiB with 422,
and every accepted write gets a new ``resourceVersion``. Faults can be injected per verb.
"""

from __future__ import annotations

import base64
import copy
import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncd.errors import KubernetesApiError

MAX_SECRET_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Call:
    verb: str  # "GET" or "PUT"
    name: str
    status: int


class FakeSecrets:
    def __init__(self, namespace: str = "syncd", names: tuple[str, ...] = ()) -> None:
        self.namespace = namespace
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.fail_next: dict[str, KubernetesApiError] = {}  # verb -> error raised once
        self.puts_before_failure: int | None = None  # then every PUT fails (503) until reset
        self._versions = itertools.count(1000)
        self._lock = threading.Lock()
        for name in names:
            self.create(name)

    def create(self, name: str, data: Mapping[str, bytes] | None = None) -> None:
        """What the manifests do (syncd itself never creates)."""
        with self._lock:
            self.objects[name] = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": name,
                    "namespace": self.namespace,
                    "labels": {"app.kubernetes.io/name": "syncd"},
                    "resourceVersion": str(next(self._versions)),
                },
                **({"data": {k: base64.b64encode(v).decode() for k, v in data.items()}} if data else {}),
            }

    def puts(self, *, status: int | None = 200) -> list[Call]:
        return [c for c in self.calls if c.verb == "PUT" and (status is None or c.status == status)]

    def data_of(self, name: str, key: str) -> bytes | None:
        value = (self.objects[name].get("data") or {}).get(key)
        return None if value is None else base64.b64decode(value)

    def touch(self, name: str) -> None:
        """Another writer (kubectl, a second leader) updates the Secret: its version moves on."""
        with self._lock:
            self.objects[name]["metadata"]["resourceVersion"] = str(next(self._versions))

    # --- the API --------------------------------------------------------------------------------

    def get(self, name: str) -> dict[str, Any]:
        with self._lock:
            self._fault("GET", name)
            if name not in self.objects:
                return self._refuse("GET", name, 404, "NotFound", f'secrets "{name}" not found')
            self.calls.append(Call("GET", name, 200))
            return copy.deepcopy(self.objects[name])

    def replace(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._fault("PUT", name)
            if self.puts_before_failure is not None and len(self.puts()) >= self.puts_before_failure:
                return self._refuse("PUT", name, 503, "ServiceUnavailable", "the API went away")
            stored = self.objects.get(name)
            if stored is None:
                return self._refuse("PUT", name, 404, "NotFound", f'secrets "{name}" not found')
            given = body.get("metadata", {}).get("resourceVersion")
            if given is not None and given != stored["metadata"]["resourceVersion"]:
                return self._refuse(
                    "PUT",
                    name,
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on secrets "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                )
            data = body.get("data") or {}
            if sum(len(base64.b64decode(v)) for v in data.values()) > MAX_SECRET_SIZE:
                return self._refuse("PUT", name, 422, "Invalid", f'Secret "{name}" is invalid: data: Too long')
            updated = copy.deepcopy(dict(body))
            updated["metadata"] = {**stored["metadata"], "resourceVersion": str(next(self._versions))}
            self.objects[name] = updated
            self.calls.append(Call("PUT", name, 200))
            return copy.deepcopy(updated)

    def _fault(self, verb: str, name: str) -> None:
        error = self.fail_next.pop(verb, None)
        if error is not None:
            self.calls.append(Call(verb, name, error.status or 0))
            raise error

    def _refuse(self, verb: str, name: str, status: int, reason: str, message: str) -> dict[str, Any]:
        self.calls.append(Call(verb, name, status))
        where = f"{self.namespace}/{name}"
        text = f"{verb} secret {where}: {status} {reason}: {message}"
        raise KubernetesApiError(text, status=status, api_reason=reason)
