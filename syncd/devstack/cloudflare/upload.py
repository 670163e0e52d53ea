"""Parsing of the Worker script upload (``PUT .../workers/scripts/{name}``, multipart/form-data).

The ``metadata`` part is JSON: ``main_module`` (ES modules) or ``body_part`` (service worker)
naming another part, ``bindings`` (``plain_text`` vars ``{"type","name","text"}``,
``secret_text``/``secret_key`` secrets; other binding types are accepted and ignored) and
``keep_bindings`` (binding types carried over from the previous version, e.g.
``["secret_text","secret_key"]``, which is what wrangler sends to keep secrets), ``inherit``
bindings (``{"type": "inherit", "name"}``, SDK ``SettingsBindingWorkersBindingKindInherit``) and
``annotations`` (``workers/message``, ``workers/tag``), ``compatibility_date`` and
``compatibility_flags``. Every other part is a module (``code``). Parsed with the stdlib ``email``
parser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from syncd.devstack.cloudflare.code import DEFAULT_COMPATIBILITY_DATE, NOT_MODULES, WorkerCode, WorkerModule
from syncd.devstack.cloudflare.envelope import INVALID_BINDING, ApiError


@dataclass(frozen=True)
class ScriptUpload:
    bindings: list[dict[str, Any]]
    keep_bindings: set[str]
    annotations: dict[str, Any] = field(default_factory=dict)
    strict_inherit: bool = False  # ``?bindings_inherit=strict`` on a version upload
    code: WorkerCode | None = None


def _bad_upload(message: str) -> ApiError:
    return ApiError(400, INVALID_BINDING, message)


def _parts(content_type: str, body: bytes) -> dict[str, Message]:
    if not content_type.lower().startswith("multipart/form-data"):
        raise _bad_upload("Content-Type must be multipart/form-data")
    document = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    message = BytesParser(policy=HTTP).parsebytes(document)
    if not message.is_multipart():
        raise _bad_upload("could not parse the multipart form")
    parts: dict[str, Message] = {}
    for part in message.iter_parts():
        # Modules are referenced by file name (the SDK sends every module as a part named
        # "files"), older clients name the part after the module: index both.
        for key in ("filename", "name"):
            value = part.get_param(key, header="content-disposition")
            if isinstance(value, str):
                parts.setdefault(value, part)
    return parts


def parse_upload(content_type: str | None, body: bytes) -> ScriptUpload:
    parts = _parts(content_type or "", body)
    metadata_part = parts.get("metadata")
    if metadata_part is None:
        raise _bad_upload("the upload has no metadata part")
    payload = metadata_part.get_payload(decode=True)
    try:
        metadata = json.loads(payload if isinstance(payload, bytes) else b"")
    except ValueError as exc:
        raise _bad_upload("the metadata part is not valid JSON") from exc
    if not isinstance(metadata, dict):
        raise _bad_upload("the metadata part must be a JSON object")
    main = metadata.get("main_module") or metadata.get("body_part")
    if not isinstance(main, str) or main not in parts:
        raise _bad_upload("metadata must name the main module (main_module or body_part) and include its part")
    bindings = metadata.get("bindings", [])
    if not isinstance(bindings, list) or not all(isinstance(b, dict) for b in bindings):
        raise _bad_upload("metadata.bindings must be a list of objects")
    keep = metadata.get("keep_bindings", [])
    if not isinstance(keep, list):
        raise _bad_upload("metadata.keep_bindings must be a list")
    annotations = metadata.get("annotations", {})
    if not isinstance(annotations, dict):
        raise _bad_upload("metadata.annotations must be an object")
    code = _code(metadata, main, parts, service_worker="main_module" not in metadata)
    return ScriptUpload(bindings=bindings, keep_bindings={str(k) for k in keep}, annotations=annotations, code=code)


def _code(metadata: dict[str, Any], main: str, parts: dict[str, Message], *, service_worker: bool) -> WorkerCode:
    date = metadata.get("compatibility_date") or DEFAULT_COMPATIBILITY_DATE
    flags = metadata.get("compatibility_flags") or []
    if not isinstance(date, str) or not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise _bad_upload("compatibility_date must be a string and compatibility_flags a list of strings")
    modules: list[WorkerModule] = []
    seen: set[int] = set()
    for name, part in parts.items():
        content_type = part.get_content_type()
        if name == "metadata" or id(part) in seen or content_type in NOT_MODULES:
            continue
        seen.add(id(part))
        module_name = part.get_param("filename", header="content-disposition") or name
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        modules.append(WorkerModule(str(module_name), content_type, content))
    modules.sort(key=lambda module: module.name != main)  # the main module first
    return WorkerCode(main, tuple(modules), date, tuple(flags), service_worker)


def parse_settings(content_type: str | None, body: bytes) -> dict[str, Any]:
    """The ``settings`` part of ``PATCH .../settings`` (multipart/form-data, JSON in the part).

    The SDK's ``script_and_version_settings.edit`` and older wrangler ``secret bulk``
    (``data.set("settings", JSON.stringify({ bindings }))``) both send it this way.
    """
    part = _parts(content_type or "", body).get("settings")
    if part is None:
        raise _bad_upload("the request has no settings part")
    payload = part.get_payload(decode=True)
    try:
        settings = json.loads(payload if isinstance(payload, bytes) else b"")
    except ValueError as exc:
        raise _bad_upload("the settings part is not valid JSON") from exc
    if not isinstance(settings, dict):
        raise _bad_upload("the settings part must be a JSON object")
    bindings = settings.get("bindings")
    if bindings is not None and (not isinstance(bindings, list) or not all(isinstance(b, dict) for b in bindings)):
        raise _bad_upload("settings.bindings must be a list of objects")
    return settings
