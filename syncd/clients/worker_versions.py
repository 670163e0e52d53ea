"""Reading a Worker's versions and deployment, and staging secrets into an undeployed version.

Implements ``syncd.engine.ports.WorkerVersions`` on top of ``CloudflareClient.request``
(same pacer, retries, deadlines and typed errors: every call here counts against the one rate budget).

Routes (see ``/work/shared/reference/cloudflare-workers-secrets.md``, "Versions and deployment";
the official SDK 5.9 ``resources/workers/beta/workers/versions.py`` and
``resources/workers/scripts/{versions,deployments}.py``; wrangler ``versions/secrets/index.ts``):

- ``list_versions``: ``GET /accounts/{a}/workers/workers/{script}/versions?page&per_page`` (beta;
  a plain list newest first, each item flat ``{id, number, created_on, author_email, author_id,
  source, annotations, bindings}``). The beta route has no dispatch-namespace form, so a namespaced
  script is listed with the classic ``GET .../scripts/{script}/versions`` (``result.items``, with
  ``metadata`` and ``annotations`` but no bindings; ``version`` then gives the bindings).
  Paging stops at the first version not newer than ``newer_than``.
- ``version``: ``GET .../scripts/{script}/versions/{id}`` (``resources.bindings``: names and types).
- ``current_deployment``: ``GET .../scripts/{script}/deployments`` (``result.deployments``, newest
  first; the first one serves traffic).
- ``stage_secrets``: ``PATCH /accounts/{a}/workers/workers/{script}/versions/latest`` with
  ``Content-Type: application/merge-patch+json`` and ``{"env": {NAME: body | null}, "annotations":
  {"workers/message": "syncd: ..."}}``: a copy of the latest version with those changes, NOT deployed
  (what ``wrangler versions secret put|bulk`` do). 10214/10215 raise ``CloudflareNotDeployed``,
  10222 (no versions) ``CloudflareNoVersions``. A dispatch-namespace script has no such route:
  ``stage_secrets`` refuses it with ``CloudflareValidationError`` before sending anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncd.clients.cloudflare import CloudflareClient, _q, script_path
from syncd.errors import CloudflareError, CloudflareValidationError
from syncd.model import SecretBody, Target
from syncd.model_versions import SYNCD_MESSAGE_PREFIX, StagedVersion, WorkerDeployment, WorkerVersion

MERGE_PATCH = "application/merge-patch+json"
PER_PAGE = 10
MAX_PAGES = 10  # at most 100 versions: Cloudflare keeps only the last 100 for rollbacks anyway
MAX_MESSAGE_BYTES = 1000


def beta_path(target: Target) -> str:
    return f"/accounts/{_q(target.account_id)}/workers/workers/{_q(target.script)}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _bindings(raw: Any) -> dict[str, str]:
    if not isinstance(raw, list):
        return {}
    return {str(b["name"]): str(b.get("type", "")) for b in raw if isinstance(b, dict) and "name" in b}


def _annotations(item: Mapping[str, Any]) -> tuple[str, str]:
    annotations = item.get("annotations")
    if not isinstance(annotations, dict):
        return "", ""
    return _text(annotations.get("workers/triggered_by")), _text(annotations.get("workers/message"))


def version_from_beta(item: Mapping[str, Any]) -> WorkerVersion:
    triggered_by, message = _annotations(item)
    return WorkerVersion(
        id=str(item["id"]),
        number=int(item["number"]),
        created_on=_text(item.get("created_on")),
        author_email=_text(item.get("author_email")),
        author_id=_text(item.get("author_id")),
        source=_text(item.get("source")),
        triggered_by=triggered_by,
        message=message,
        bindings=_bindings(item.get("bindings")) if "bindings" in item else None,
    )


def version_from_classic(item: Mapping[str, Any]) -> WorkerVersion:
    metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    triggered_by, message = _annotations(item)
    resources = item.get("resources")
    bindings = _bindings(resources.get("bindings")) if isinstance(resources, dict) else None
    return WorkerVersion(
        id=str(item["id"]),
        number=int(item["number"]),
        created_on=_text(metadata.get("created_on")),
        author_email=_text(metadata.get("author_email")),
        author_id=_text(metadata.get("author_id")),
        source=_text(metadata.get("source")),
        triggered_by=triggered_by,
        message=message,
        bindings=bindings,
    )


def syncd_message(text: str) -> str:
    """``workers/message`` for a version syncd writes: prefixed, at most 1,000 bytes."""
    message = text if text.startswith(SYNCD_MESSAGE_PREFIX) else f"{SYNCD_MESSAGE_PREFIX} {text}"
    return message.encode()[:MAX_MESSAGE_BYTES].decode(errors="ignore")


class WorkerVersionsClient:
    """Versions, deployments and staging for the scripts of one ``CloudflareClient``."""

    def __init__(self, client: CloudflareClient, *, per_page: int = PER_PAGE, max_pages: int = MAX_PAGES) -> None:
        self._client = client
        self._per_page = per_page
        self._max_pages = max_pages

    def _get(self, path: str, operation: str, params: Mapping[str, str] | None = None) -> Any:
        return self._client.request("GET", path, operation=operation, params=params)

    def list_versions(self, target: Target, *, newer_than: int | None = None) -> list[WorkerVersion]:
        """Newest first; only versions with ``number > newer_than`` (the first page when None)."""
        found: list[WorkerVersion] = []
        for page in range(1, self._max_pages + 1):
            params = {"page": str(page), "per_page": str(self._per_page)}
            if target.dispatch_namespace:
                result = self._get(f"{script_path(target)}/versions", "list_versions", params)
                items = result.get("items") if isinstance(result, dict) else None
                parse = version_from_classic
            else:
                items = self._get(f"{beta_path(target)}/versions", "list_versions", params)
                parse = version_from_beta
            if not isinstance(items, list):
                raise CloudflareError(f"Cloudflare GET versions of {target}: result is not a list", status=200)
            for item in items:
                if not isinstance(item, dict):
                    continue
                version = parse(item)
                if newer_than is not None and version.number <= newer_than:
                    return found
                found.append(version)
            if newer_than is None or len(items) < self._per_page:
                break  # without a known number, the first page (the newest versions) is enough
        return found

    def version(self, target: Target, version_id: str) -> WorkerVersion:
        """One version with its binding names and types."""
        result = self._get(f"{script_path(target)}/versions/{_q(version_id)}", "get_version")
        if not isinstance(result, dict):
            raise CloudflareError(f"Cloudflare GET version {version_id} of {target}: not an object", status=200)
        return version_from_classic(result)

    def current_deployment(self, target: Target) -> WorkerDeployment | None:
        result = self._get(f"{script_path(target)}/deployments", "list_deployments")
        deployments = result.get("deployments") if isinstance(result, dict) else None
        if not isinstance(deployments, list) or not deployments or not isinstance(deployments[0], dict):
            return None
        first = deployments[0]
        versions = tuple(
            (str(v["version_id"]), float(v.get("percentage", 0)))
            for v in first.get("versions") or []
            if isinstance(v, dict) and "version_id" in v
        )
        return WorkerDeployment(
            id=_text(first.get("id")),
            created_on=_text(first.get("created_on")),
            author_email=_text(first.get("author_email")),
            source=_text(first.get("source")),
            versions=versions,
        )

    def stage_secrets(self, target: Target, changes: Mapping[str, SecretBody | None], message: str) -> StagedVersion:
        """One new undeployed version holding ``changes`` (``None`` deletes that name)."""
        if target.dispatch_namespace:
            raise CloudflareValidationError(
                f"cannot stage secrets on {target}: the versions/latest route has no dispatch-namespace form"
            )
        env: dict[str, Any] = {}
        for name, body in changes.items():
            if body is not None and body.name != name:
                raise ValueError(f"stage_secrets: key {name!r} does not match its body's name {body.name!r}")
            env[name] = None if body is None else body.reveal()
        payload = {"env": env, "annotations": {"workers/message": syncd_message(message)}}
        result = self._client.request(
            "PATCH",
            f"{beta_path(target)}/versions/latest",
            operation="stage_secrets",
            json=payload,
            headers={"Content-Type": MERGE_PATCH},
        )
        if not isinstance(result, dict) or "id" not in result or "number" not in result:
            raise CloudflareError(f"Cloudflare PATCH versions/latest of {target}: no version in the result", status=200)
        return StagedVersion(id=str(result["id"]), number=int(result["number"]))
