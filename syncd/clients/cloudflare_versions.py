"""Workers versions and deployments: read them, and stage secrets into a new undeployed version.

Built on ``CloudflareClient.request`` (same pacer, retries, deadlines and typed errors). Paths and
shapes as the official SDK 5.9 and wrangler use them (see ``syncd/devstack/cloudflare/versions.py``
for the sources):

- ``GET {script}/versions?page&per_page`` (newest first, ``result.items``);
- ``GET {script}/versions/{id}`` (``resources.bindings``: names and types, never values);
- ``GET {script}/deployments`` (``result.deployments``, newest first: the first one serves);
- ``PATCH /accounts/{a}/workers/workers/{script}/versions/latest`` with
  ``Content-Type: application/merge-patch+json`` and ``{"env": {NAME: body | null},
  "annotations": {"workers/message": ...}}``: what ``wrangler versions secret put`` sends. The new
  version is not deployed; Cloudflare copies every other binding from the latest version.

Errors: ``CloudflareNotDeployed`` (10214/10215) is what a direct secret edit raises while a
gradual deployment runs; ``CloudflareNoVersions`` (10222) when ``stage_secrets`` finds no version.
A dispatch-namespace script has no beta ``workers/workers`` route, so ``stage_secrets`` refuses one
with ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from syncd.clients.cloudflare import CloudflareClient, script_path
from syncd.errors import CloudflareError
from syncd.model import SecretBody, Target

SECRET_KINDS = ("secret_text", "secret_key")
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
SYNCD_MESSAGE_PREFIX = "syncd:"
DEFAULT_PER_PAGE = 50


@dataclass(frozen=True)
class VersionInfo:
    """One Worker version as listed: who made it, how, and the annotations."""

    id: str
    number: int
    created_on: str
    author_email: str | None
    author_id: str | None
    source: str | None
    message: str | None
    tag: str | None
    triggered_by: str | None

    @property
    def made_by_syncd(self) -> bool:
        """A version syncd staged (its ``workers/message`` starts with ``syncd:``)."""
        return (self.message or "").startswith(SYNCD_MESSAGE_PREFIX)


@dataclass(frozen=True)
class SecretBinding:
    name: str
    kind: str  # "secret_text" | "secret_key"


@dataclass(frozen=True)
class VersionDetail:
    info: VersionInfo
    secrets: tuple[SecretBinding, ...]  # the secret bindings only, sorted by name

    @property
    def secret_names(self) -> frozenset[str]:
        return frozenset(binding.name for binding in self.secrets)


@dataclass(frozen=True)
class TrafficShare:
    version_id: str
    percentage: float


@dataclass(frozen=True)
class DeploymentInfo:
    id: str
    created_on: str
    source: str | None
    author_email: str | None
    message: str | None
    versions: tuple[TrafficShare, ...]

    @property
    def sole_version_id(self) -> str | None:
        """The version serving 100 % of traffic, or None during a gradual deployment."""
        if len(self.versions) == 1 and self.versions[0].percentage == 100:
            return self.versions[0].version_id
        return None


class CloudflareVersions:
    """Versions and deployments of Worker scripts, through one ``CloudflareClient``."""

    def __init__(self, client: CloudflareClient, *, per_page: int = DEFAULT_PER_PAGE) -> None:
        if per_page < 1:
            raise ValueError("per_page must be at least 1")
        self._client = client
        self._per_page = per_page

    def list_versions(
        self, target: Target, *, newer_than: int | None = None, limit: int | None = None
    ) -> list[VersionInfo]:
        """Versions newest first; stops at (and omits) number ``newer_than``, and after ``limit`` versions."""
        found: list[VersionInfo] = []
        page = 1
        while True:
            result = self._client.request(
                "GET",
                f"{script_path(target)}/versions",
                operation="list_versions",
                params={"page": str(page), "per_page": str(self._per_page)},
            )
            items = _items(result, target)
            for item in items:
                info = _version_info(item, target)
                if (newer_than is not None and info.number <= newer_than) or (
                    limit is not None and len(found) >= limit
                ):
                    return found
                found.append(info)
            if len(items) < self._per_page:
                return found
            page += 1

    def get_version(self, target: Target, version_id: str) -> VersionDetail:
        path = f"{script_path(target)}/versions/{quote(version_id, safe='')}"
        result = self._client.request("GET", path, operation="get_version")
        if not isinstance(result, dict):
            raise _malformed(target, "a version is not an object")
        bindings = (result.get("resources") or {}).get("bindings") or []
        secrets = sorted(
            (
                SecretBinding(str(b["name"]), str(b["type"]))
                for b in bindings
                if isinstance(b, dict) and b.get("type") in SECRET_KINDS and "name" in b
            ),
            key=lambda binding: binding.name,
        )
        return VersionDetail(_version_info(result, target), tuple(secrets))

    def current_deployment(self, target: Target) -> DeploymentInfo | None:
        """The deployment serving traffic, or None for a script never deployed."""
        result = self._client.request("GET", f"{script_path(target)}/deployments", operation="list_deployments")
        deployments = result.get("deployments") if isinstance(result, dict) else None
        if not isinstance(deployments, list):
            raise _malformed(target, "deployments is not a list")
        if not deployments:
            return None
        first = deployments[0]
        if not isinstance(first, dict):
            raise _malformed(target, "a deployment is not an object")
        annotations = first.get("annotations") or {}
        shares = tuple(
            TrafficShare(str(v["version_id"]), float(v["percentage"]))
            for v in first.get("versions") or []
            if isinstance(v, dict) and "version_id" in v and "percentage" in v
        )
        return DeploymentInfo(
            id=str(first.get("id")),
            created_on=str(first.get("created_on")),
            source=_text(first.get("source")),
            author_email=_text(first.get("author_email")),
            message=_text(annotations.get("workers/message")) if isinstance(annotations, dict) else None,
            versions=shares,
        )

    def stage_secrets(self, target: Target, changes: Mapping[str, SecretBody | None], message: str) -> VersionInfo:
        """Write ``changes`` (None deletes) into a new version that is NOT deployed; one call.

        ``message`` becomes the ``workers/message`` annotation, prefixed with ``syncd:`` so the
        version is recognisably syncd's. Raises ``CloudflareNoVersions`` (10222) without versions.
        """
        if target.dispatch_namespace:
            raise ValueError(f"{target}: staging into a version is not available for dispatch-namespace scripts")
        env: dict[str, Any] = {}
        for name, body in changes.items():
            if body is not None and body.name != name:
                raise ValueError(f"stage_secrets: key {name!r} does not match its body's name {body.name!r}")
            env[name] = None if body is None else body.reveal()
        if not env:
            raise ValueError("stage_secrets: no changes")
        text = message if message.startswith(SYNCD_MESSAGE_PREFIX) else f"{SYNCD_MESSAGE_PREFIX} {message}"
        path = f"/accounts/{quote(target.account_id, safe='')}/workers/workers/{quote(target.script, safe='')}"
        result = self._client.request(
            "PATCH",
            f"{path}/versions/latest",
            operation="stage_secrets",
            json={"env": env, "annotations": {"workers/message": text}},
            headers=MERGE_PATCH,
        )
        if not isinstance(result, dict):
            raise _malformed(target, "the staged version is not an object")
        return _version_info(result, target)


def _items(result: Any, target: Target) -> list[dict[str, Any]]:
    items = result.get("items") if isinstance(result, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _malformed(target, "versions is not a list of objects")
    return items


def _version_info(item: Mapping[str, Any], target: Target) -> VersionInfo:
    """From a classic version (``metadata`` object) or a beta one (flat ``author_email``...)."""
    metadata = item.get("metadata")
    meta: Mapping[str, Any] = metadata if isinstance(metadata, dict) else item
    annotations = item.get("annotations")
    notes: Mapping[str, Any] = annotations if isinstance(annotations, dict) else {}
    number = item.get("number")
    if not isinstance(item.get("id"), str) or not isinstance(number, int | float) or isinstance(number, bool):
        raise _malformed(target, "a version has no id or number")
    return VersionInfo(
        id=str(item["id"]),
        number=int(number),
        created_on=str(meta.get("created_on") or item.get("created_on") or ""),
        author_email=_text(meta.get("author_email")),
        author_id=_text(meta.get("author_id")),
        source=_text(meta.get("source")),
        message=_text(notes.get("workers/message")),
        tag=_text(notes.get("workers/tag")),
        triggered_by=_text(notes.get("workers/triggered_by")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _malformed(target: Target, what: str) -> CloudflareError:
    return CloudflareError(f"Cloudflare versions of {target}: {what}", status=200)
