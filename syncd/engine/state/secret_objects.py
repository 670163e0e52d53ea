"""The Secret objects of the ``kubernetes`` state: the API port, reading and filling their data,
and what an API error means for the state (a ``StateError`` naming the Secret and the fix).

Wire facts: see ``syncd.clients.kubernetes`` (paths, ``resourceVersion`` preconditions, Status
bodies). Secret ``data`` values are base64 in the API's JSON.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from syncd.engine.state.chunks import DATA_KEY, Chunk, decode, encode
from syncd.errors import KubernetesApiError, StateError


class SecretsApi(Protocol):
    """The Kubernetes API as the state needs it: Secret objects of one namespace, as JSON.

    ``syncd.clients.kubernetes.SecretsClient`` implements it; tests pass fakes. Both methods raise
    ``KubernetesApiError`` (``status`` 404, 409, 403, ... or None when no answer came).
    """

    @property
    def namespace(self) -> str: ...

    def get(self, name: str) -> dict[str, Any]: ...

    def replace(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]: ...


def records_of(body: Mapping[str, Any], where: str) -> Chunk:
    """The records a Secret holds (none when the manifests created it empty)."""
    data = body.get("data") or {}
    encoded = data.get(DATA_KEY) if isinstance(data, dict) else None
    if encoded is None:
        return decode(encode((), ()), where)
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (ValueError, TypeError):
        raise StateError(f"state {where}: {DATA_KEY} is not base64") from None
    return decode(blob, where)


def without_data(body: Mapping[str, Any]) -> dict[str, Any]:
    """The object to send back on the next write, without our (large) data key."""
    kept = dict(body)
    data = kept.get("data")
    if isinstance(data, dict):
        kept["data"] = {k: v for k, v in data.items() if k != DATA_KEY}
    return kept


def with_data(body: Mapping[str, Any], blob: bytes) -> dict[str, Any]:
    """``body`` (as last read or written, so with its ``resourceVersion``) holding ``blob``."""
    filled = dict(body)
    filled["data"] = {**(filled.get("data") or {}), DATA_KEY: base64.b64encode(blob).decode("ascii")}
    return filled


def checked(answer: dict[str, Any], where: str) -> dict[str, Any]:
    metadata = answer.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("resourceVersion"), str):
        raise StateError(f"state secret {where}: the API answered an object without metadata.resourceVersion")
    return answer


def state_error(exc: KubernetesApiError, where: str, verb: str, names: Sequence[str]) -> StateError:
    """What a failed call (other than a 409) means, naming the Secret and what would fix it."""
    if exc.status == 404:
        return StateError(
            f"state secret {where} does not exist: the manifests create the Secrets "
            f"{names[0]}..{names[-1]} (syncd has no create on Secrets)"
        )
    if exc.status == 403:
        return StateError(
            f"cannot {verb} state secret {where}: forbidden; syncd's Role needs get and update on secrets "
            f"with resourceNames {', '.join(names)}"
        )
    return StateError(f"cannot {verb} state secret {where}: {exc}")
