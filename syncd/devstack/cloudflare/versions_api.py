"""The real versions, deployments and settings routes (behaviour in ``lifecycle``, shapes in ``versions``).

Paths as the official SDK 5.9 calls them (``resources/workers/scripts/versions.py``,
``deployments.py``, ``script_and_version_settings.py``, ``resources/workers/beta/workers/versions.py``)
and wrangler (``versions-api.ts``, ``versions/secrets/index.ts``), under both script bases
(account scripts and dispatch-namespace scripts) except the beta routes:

- ``GET {base}/versions?page&per_page&deployable`` -> ``{"items": [...]}`` + ``result_info``
  (``SyncV4PagePagination``), newest first; ``GET {base}/versions/{version_id}``;
  ``POST {base}/versions`` (multipart upload, not deployed; ``?bindings_inherit=strict``).
- ``GET {base}/deployments`` -> ``{"deployments": [...]}`` newest first (wrangler
  ``fetchLatestDeployments`` reads exactly that; the SDK types the page as ``result.items``, so
  through the SDK the list is in the page's ``result`` extras); ``POST {base}/deployments``
  (``?force``); ``GET {base}/deployments/{id}``.
- ``GET|PATCH {base}/settings`` (PATCH is multipart with a JSON ``settings`` part).
- Beta: ``GET /accounts/{a}/workers/workers/{script}/versions`` (a plain list +
  ``result_info``, ``SyncV4PagePaginationArray``), ``GET .../versions/{id}``, and
  ``PATCH .../versions/latest`` (``application/merge-patch+json``; wrangler sends that content type,
  the emulator accepts any JSON body).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from syncd.devstack.cloudflare.envelope import INVALID_BINDING, ApiError, envelope_response, parse_json_body, success
from syncd.devstack.cloudflare.lifecycle import Lifecycle, Target
from syncd.devstack.cloudflare.upload import parse_settings, parse_upload
from syncd.devstack.cloudflare.versions import Author
from syncd.devstack.httpkit import Request, Response, Router

if TYPE_CHECKING:
    from syncd.devstack.cloudflare.api import CloudflareApi

ACCOUNT = r"/accounts/(?P<account>[0-9a-f]{32})"
SCRIPT_BASES = (
    ACCOUNT + r"/workers/scripts/(?P<script>[^/]+)",
    ACCOUNT + r"/workers/dispatch/namespaces/(?P<namespace>[^/]+)/scripts/(?P<script>[^/]+)",
)
BETA_BASE = ACCOUNT + r"/workers/workers/(?P<script>[^/]+)"
VERSION_ID = r"/versions/(?P<version>(?!latest$)[^/]+)"


def _target(request: Request) -> Target:
    return request.params["account"], request.params["script"], request.params.get("namespace")


def _positive(request: Request, name: str, default: int, ceiling: int) -> int:
    raw = request.query_value(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, INVALID_BINDING, f"{name} must be a positive integer") from None
    if value < 1:
        raise ApiError(400, INVALID_BINDING, f"{name} must be a positive integer")
    return min(value, ceiling)


def _paging(total: int, page: int, per_page: int, count: int) -> dict[str, int]:
    return {
        "page": page,
        "per_page": per_page,
        "count": count,
        "total_count": total,
        "total_pages": max(math.ceil(total / per_page), 1),
    }


def _paged(result: Any, info: dict[str, int]) -> Response:
    body = {"success": True, "errors": [], "messages": [], "result": result, "result_info": info}
    return envelope_response(200, body)


class VersionRoutes:
    def __init__(self, api: CloudflareApi) -> None:
        self.api = api

    @property
    def lifecycle(self) -> Lifecycle:
        return self.api.emulator.lifecycle

    def _page(self, request: Request) -> tuple[int, int]:
        config = self.api.emulator.config
        page = _positive(request, "page", 1, 1_000_000)
        per_page = _positive(request, "per_page", config.versions_per_page, config.max_per_page)
        return page, per_page

    # -- classic versions ---------------------------------------------------------------------

    def list_versions(self, request: Request, _: Author) -> Response:
        page, per_page = self._page(request)
        everything = request.query_value("deployable") == "true"
        versions, total = self.lifecycle.list_versions(_target(request), page, per_page, everything=everything)
        if everything:
            page, per_page = 1, max(total, 1)
        return _paged({"items": [v.list_item() for v in versions]}, _paging(total, page, per_page, len(versions)))

    def get_version(self, request: Request, _: Author) -> Response:
        version = self.lifecycle.version(_target(request), request.params["version"])
        return success(version.detail(request.params["script"]))

    def upload_version(self, request: Request, author: Author) -> Response:
        account, script, namespace = _target(request)
        upload = parse_upload(request.header("content-type"), request.body)
        if request.query_value("bindings_inherit") == "strict":
            upload = dataclasses.replace(upload, strict_inherit=True)
        store = self.api.emulator.store
        return success(store.upload_script(account, script, namespace, upload, author, deploy=False))

    # -- deployments ----------------------------------------------------------------------------

    def list_deployments(self, request: Request, _: Author) -> Response:
        deployments = self.lifecycle.deployments(_target(request))
        return success({"deployments": [d.view() for d in deployments]})

    def get_deployment(self, request: Request, _: Author) -> Response:
        return success(self.lifecycle.deployment(_target(request), request.params["deployment"]).view())

    def create_deployment(self, request: Request, author: Author) -> Response:
        body: Any = parse_json_body(request.body)
        force = request.query_value("force") == "true"
        return success(self.lifecycle.create_deployment(_target(request), body, author, force=force).view())

    # -- settings -------------------------------------------------------------------------------

    def get_settings(self, request: Request, _: Author) -> Response:
        return success(self.lifecycle.settings(_target(request)))

    def patch_settings(self, request: Request, author: Author) -> Response:
        settings = parse_settings(request.header("content-type"), request.body)
        return success(self.lifecycle.patch_settings(_target(request), settings, author))

    # -- beta -----------------------------------------------------------------------------------

    def beta_list(self, request: Request, _: Author) -> Response:
        page, per_page = self._page(request)
        versions, total = self.lifecycle.list_versions(_target(request), page, per_page)
        return _paged([v.beta_view() for v in versions], _paging(total, page, per_page, len(versions)))

    def beta_get(self, request: Request, _: Author) -> Response:
        return success(self.lifecycle.version(_target(request), request.params["version"]).beta_view())

    def beta_patch_latest(self, request: Request, author: Author) -> Response:
        body: Any = parse_json_body(request.body)
        return success(self.lifecycle.patch_latest(_target(request), body, author).beta_view())


def register_version_routes(router: Router, api: CloudflareApi) -> None:
    routes = VersionRoutes(api)
    guarded = api._guarded
    for base in SCRIPT_BASES:
        prefix = "/client/v4" + base
        router.add(["GET"], prefix + "/versions", guarded("read", routes.list_versions))
        router.add(["POST"], prefix + "/versions", guarded("write", routes.upload_version))
        router.add(["GET"], prefix + VERSION_ID, guarded("read", routes.get_version))
        router.add(["GET"], prefix + "/deployments", guarded("read", routes.list_deployments))
        router.add(["POST"], prefix + "/deployments", guarded("write", routes.create_deployment))
        router.add(["GET"], prefix + r"/deployments/(?P<deployment>[^/]+)", guarded("read", routes.get_deployment))
        router.add(["GET"], prefix + "/settings", guarded("read", routes.get_settings))
        router.add(["PATCH"], prefix + "/settings", guarded("write", routes.patch_settings))
    beta = "/client/v4" + BETA_BASE
    router.add(["GET"], beta + "/versions", guarded("read", routes.beta_list))
    router.add(["PATCH"], beta + "/versions/latest", guarded("write", routes.beta_patch_latest))
    router.add(["GET"], beta + VERSION_ID, guarded("read", routes.beta_get))
