"""A Worker version's code: its modules, main module and compatibility settings, from an upload.

A script upload or version upload (``PUT .../workers/scripts/{script}``, ``POST .../versions``) is
multipart/form-data: a ``metadata`` JSON part and one part per module, whose ``filename`` is the
module name and whose Content-Type says its kind (wrangler ``createWorkerUploadForm`` in
``packages/deploy-helpers/src/deploy/helpers/create-worker-upload-form.ts``, which also sends
``keep_bindings: ["secret_text", "secret_key"]`` to keep secrets): ``application/javascript+module``
for ES modules, ``application/javascript`` for CommonJS / a service worker ``body_part``,
``text/plain``, ``application/octet-stream``, ``application/wasm``, ``application/json``,
``application/source-map`` for source maps). Versions made by secret or settings edits keep the
code of the version before them, as the real API does.
"""

from __future__ import annotations

from dataclasses import dataclass

# Content-Type -> the module kind (named as in workerd's config schema, ``Worker.Module``).
MODULE_KINDS = {
    "application/javascript+module": "esModule",
    "text/javascript+module": "esModule",
    "application/javascript": "commonJsModule",
    "text/javascript": "commonJsModule",
    "text/plain": "text",
    "application/octet-stream": "data",
    "application/wasm": "wasm",
    "application/json": "json",
}
NOT_MODULES = ("application/source-map",)
DEFAULT_COMPATIBILITY_DATE = "2025-01-01"


@dataclass(frozen=True)
class WorkerModule:
    name: str
    content_type: str
    content: bytes

    @property
    def kind(self) -> str:
        return MODULE_KINDS.get(self.content_type, "data")


@dataclass(frozen=True)
class WorkerCode:
    """What an upload gave: the modules (main first) and the compatibility settings."""

    main_module: str
    modules: tuple[WorkerModule, ...]
    compatibility_date: str = DEFAULT_COMPATIBILITY_DATE
    compatibility_flags: tuple[str, ...] = ()
    service_worker: bool = False  # ``body_part`` (the old format) rather than ``main_module``

    @property
    def main(self) -> WorkerModule:
        return next(module for module in self.modules if module.name == self.main_module)

    def handlers(self) -> list[str]:
        return ["fetch"]
