"""The two resource types syncd uses, and what the API server checks on every write of them.

Leases (``coordination.k8s.io/v1``): ``spec.acquireTime``/``renewTime`` are ``MicroTime``, parsed
with Go's layout ``2006-01-02T15:04:05.000000Z07:00``: exactly six fractional digits, anything else
is a 400 decoding error (``Lease in version "v1" cannot be handled as a Lease: parsing time ...``,
quoted in krustlet/krustlet#5 and agentconnect-md/agentconnect#873) and served back in UTC with
``Z``. ``leaseDurationSeconds`` must be > 0 and ``leaseTransitions`` >= 0
(``pkg/apis/coordination/validation``).

Secrets (core ``v1``): ``data`` values are base64 (a bad one is a 400 decoding error),
``stringData`` is merged into ``data`` on write and never stored; keys must match
``[-._a-zA-Z0-9]+``; ``type`` defaults to ``Opaque`` and cannot change; the decoded data may not
exceed 1 MiB: 422 ``Secret "x" is invalid: data: Too long: must have at most 1048576 bytes``
(``ValidateSecret``; the wording is quoted live in helm/helm#7126 and uc-cdis/gen3-helm#119; older
servers said "characters"; the limit is ``KubernetesConfig.secret_max_bytes``).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncd.devstack.kubernetes.status import FieldError, GroupResource, bad_request, invalid

MICROTIME_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
_MICROTIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})\Z")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+\Z")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_B64_ALPHABET = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> GroupResource:
        return GroupResource(self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return self.kind + "List"


LEASES = Kind("Lease", "coordination.k8s.io", "v1", "leases")
SECRETS = Kind("Secret", "", "v1", "secrets")


def _undecodable(kind: Kind, why: str) -> Exception:
    return bad_request(f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}: {why}')


def check_name(kind: Kind, name: str) -> None:
    if not name:
        raise invalid(
            kind.kind,
            kind.group,
            "",
            [FieldError("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")],
        )
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        message = (
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
            "characters, '-' or '.', and must start and end with an alphanumeric character"
        )
        raise invalid(kind.kind, kind.group, name, [FieldError("FieldValueInvalid", "metadata.name", message)])


def normalize(kind: Kind, obj: dict[str, Any], previous: dict[str, Any] | None, secret_max_bytes: int) -> None:
    """Validate ``obj`` in place and bring it to its stored form; raises ``StatusError``."""
    if kind is LEASES:
        _normalize_lease(obj)
    elif kind is SECRETS:
        _normalize_secret(obj, previous, secret_max_bytes)


def _microtime(value: Any) -> str:
    if not isinstance(value, str) or not _MICROTIME.match(value):
        raise _undecodable(LEASES, f'parsing time "{value}" as "{MICROTIME_LAYOUT}": cannot parse "{value}"')
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normalize_lease(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise _undecodable(LEASES, "spec: expected an object")
    for field in ("acquireTime", "renewTime"):
        if spec.get(field) is not None:
            spec[field] = _microtime(spec[field])
    errors = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        errors.append(
            FieldError(
                "FieldValueInvalid", "spec.leaseDurationSeconds", f"Invalid value: {duration}: must be greater than 0"
            )
        )
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
        errors.append(
            FieldError(
                "FieldValueInvalid",
                "spec.leaseTransitions",
                f"Invalid value: {transitions}: must be greater than or equal to 0",
            )
        )
    if errors:
        raise invalid(LEASES.kind, LEASES.group, obj["metadata"]["name"], errors)


def _decoded_size(key: str, value: Any) -> int:
    if not isinstance(value, str):
        raise _undecodable(SECRETS, f"data[{key}]: expected a base64 string")
    raw = value.encode()
    bad = next((i for i, byte in enumerate(raw) if byte not in _B64_ALPHABET), None)
    try:
        return len(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError):
        position = bad if bad is not None else len(raw)
        raise _undecodable(SECRETS, f"illegal base64 data at input byte {position}") from None


def _normalize_secret(obj: dict[str, Any], previous: dict[str, Any] | None, max_bytes: int) -> None:
    name = obj["metadata"]["name"]
    data = obj.get("data") or {}
    string_data = obj.pop("stringData", None) or {}
    if not isinstance(data, dict) or not isinstance(string_data, dict):
        raise _undecodable(SECRETS, "data and stringData must be objects")
    for key, text in string_data.items():
        if not isinstance(text, str):
            raise _undecodable(SECRETS, f"stringData[{key}]: expected a string")
        data[key] = base64.b64encode(text.encode()).decode()
    errors = []
    total = 0
    for key, value in data.items():
        total += _decoded_size(key, value)
        if len(key) > 253 or not _CONFIG_KEY.match(key):
            message = (
                f'Invalid value: "{key}": a valid config key must consist of alphanumeric characters, '
                "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation "
                "is '[-._a-zA-Z0-9]+')"
            )
            errors.append(FieldError("FieldValueInvalid", f"data[{key}]", message))
    if total > max_bytes:
        errors.append(FieldError("FieldValueTooLong", "data", f"Too long: must have at most {max_bytes} bytes"))
    if data:
        obj["data"] = data
    else:
        obj.pop("data", None)
    obj["type"] = obj.get("type") or "Opaque"
    if previous is not None and previous.get("type", "Opaque") != obj["type"]:
        errors.append(FieldError("FieldValueInvalid", "type", f'Invalid value: "{obj["type"]}": field is immutable'))
    if errors:
        raise invalid(SECRETS.kind, SECRETS.group, name, errors)
