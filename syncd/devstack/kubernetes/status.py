"""``metav1.Status`` error bodies, worded exactly as kube-apiserver words them.

Source: ``staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go`` in github:kubernetes/kubernetes
(``NewNotFound``, ``NewAlreadyExists``, ``NewConflict``, ``NewForbidden``, ``NewInvalid``,
``NewBadRequest``, ``NewUnauthorized``, ``NewRequestEntityTooLargeError``, ``NewMethodNotSupported``)
and ``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go``
(``forbiddenMessage``). A qualified resource prints as ``leases.coordination.k8s.io`` and, in the core
group, as plain ``secrets``; ``details.kind`` holds the *resource* (``leases``), except in ``Invalid``,
which names the *kind* (``Secret``, ``Lease``). Empty fields are omitted (``omitempty``), ``metadata``
is always ``{}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syncd.devstack.httpkit import Response

OPTIMISTIC_LOCK_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again"


@dataclass(frozen=True)
class GroupResource:
    group: str  # "" for the core group
    resource: str  # plural, lower case: "leases", "secrets"

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


class StatusError(Exception):
    """An API error carrying its ``Status`` body; handlers raise it, the server answers it."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def response(self) -> Response:
        return Response.json(self.code, self.body())


def _details(gr: GroupResource, name: str = "", **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if gr.group:
        details["group"] = gr.group
    if gr.resource:
        details["kind"] = gr.resource
    details.update(extra)
    return details


def not_found(gr: GroupResource, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{gr} "{name}" not found', _details(gr, name))


def already_exists(gr: GroupResource, name: str) -> StatusError:
    return StatusError(409, "AlreadyExists", f'{gr} "{name}" already exists', _details(gr, name))


def conflict(gr: GroupResource, name: str, why: str = OPTIMISTIC_LOCK_MESSAGE) -> StatusError:
    message = f'Operation cannot be fulfilled on {gr} "{name}": {why}'
    return StatusError(409, "Conflict", message, _details(gr, name))


def forbidden(gr: GroupResource, name: str, user: str, verb: str, namespace: str) -> StatusError:
    why = (
        f'User "{user}" cannot {verb} resource "{gr.resource}" in API group "{gr.group}" in the namespace "{namespace}"'
    )
    message = f'{gr} "{name}" is forbidden: {why}' if name else f"{gr} is forbidden: {why}"
    return StatusError(403, "Forbidden", message, _details(gr, name))


def unauthorized() -> StatusError:
    # The authentication filter answers with the bare reason, no details (apiserver
    # endpoints/handlers/responsewriters: Unauthorized -> NewUnauthorized("Unauthorized")).
    return StatusError(401, "Unauthorized", "Unauthorized")


@dataclass(frozen=True)
class FieldError:
    type: str  # CauseType: "FieldValueInvalid", "FieldValueRequired", "FieldValueTooLong", ...
    field: str
    body: str  # ErrorBody(): "Required value: ...", "Too long: must have at most 1048576 bytes"

    def aggregate_text(self) -> str:
        return f"{self.field}: {self.body}"


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> StatusError:
    qualified_kind = f"{kind}.{group}" if group else kind
    causes = [{"reason": e.type, "message": e.body, "field": e.field} for e in errors]
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = causes
    texts = [e.aggregate_text() for e in errors]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return StatusError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def request_entity_too_large(limit: int) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def unsupported_media_type(content_type: str, accepted: list[str]) -> StatusError:
    message = (
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}"
        if content_type
        else "the body of the request was in an unknown format"
    )
    return StatusError(415, "UnsupportedMediaType", message)


def method_not_allowed() -> StatusError:
    return StatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def path_not_found() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource", {})


def deleted(gr: GroupResource, name: str, uid: str) -> dict[str, Any]:
    """The ``Success`` Status a DELETE answers when the store does not return the object
    (``registry/generic/registry/store.go`` ``finalizeDelete``; Secrets and Leases do not set
    ``ReturnDeletedObject``)."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": _details(gr, name, uid=uid),
    }
