"""The routes ``wrangler deploy``, ``versions upload``, ``versions deploy`` and ``deployments list``
call besides script upload, versions and deployments (``api``, ``versions_api``).

From cloudflare/workers-sdk at f830836 (wrangler 4.x):

- ``GET /accounts/{a}/workers/services/{script}``: the service metadata wrangler reads first
  (``deploy-helpers/src/deploy/helpers/validate-worker-props.ts``, ``versions/deploy.ts``); shape
  ``ServiceMetadataRes`` in ``workers-utils/src/types.ts``: ``{id, default_environment:
  {environment, created_on, modified_on, script: {id, tag, tags, etag, handlers, modified_on,
  created_on, migration_tag, usage_model, limits, compatibility_date, compatibility_flags,
  last_deployed_from}}, created_on, modified_on, usage_model, environments}``. A missing script
  is 10007 (``worker-not-found-error.ts`` treats 10007 and 10090 alike: "not found, create it").
- ``PATCH /accounts/{a}/workers/scripts/{script}/script-settings`` (JSON; tail consumers, logpush,
  observability, tags: ``versions-api.ts`` ``patchNonVersionedScriptSettings``) and its ``GET``:
  script-level settings that make no version; kept per script and echoed back.
- ``GET /accounts/{a}/workers/subdomain``: the account's workers.dev subdomain
  (``triggers/subdomain.ts``) ``{"subdomain"}``; ``GET|POST .../scripts/{script}/subdomain``:
  whether the script is on workers.dev ``{"enabled", "previews_enabled"}`` (``triggers/deploy.ts``).
- ``GET .../scripts/{script}/schedules`` / ``PUT`` (cron triggers, ``{"schedules": [...]}``).
- ``GET|PATCH /accounts/{a}/workers/workers/{script}``: the beta Worker resource (SDK 5.9
  ``types/workers/beta/worker.py``: ``{id, name, created_on, updated_on, deployed_on, logpush,
  observability, references, subdomain, tags, tail_consumers, previews_base_config}``), which
  wrangler reads for preview defaults (``deploy-helpers/src/preview/api.ts``); PATCH merges
  ``preview_defaults`` / ``previews_base_config`` and answers the resource.
- ``GET /zones?name=...`` and routes are not modelled: the devstack has no zones (use
  ``workers_dev`` or no routes in the wrangler config).

The account subdomain is this emulator's choice (``devstack``); wrangler only prints it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syncd.devstack.cloudflare.envelope import INVALID_BINDING, ApiError, parse_json_body, success
from syncd.devstack.cloudflare.versions import Author
from syncd.devstack.httpkit import Request, Response, Router

if TYPE_CHECKING:
    from syncd.devstack.cloudflare.api import CloudflareApi

ACCOUNT = r"/accounts/(?P<account>[0-9a-f]{32})"
SCRIPT = ACCOUNT + r"/workers/scripts/(?P<script>[^/]+)"
ACCOUNT_SUBDOMAIN = "devstack"


class ServiceRoutes:
    def __init__(self, api: CloudflareApi) -> None:
        self.api = api
        self.script_settings: dict[tuple[str, str], dict[str, Any]] = {}
        self.subdomains: dict[tuple[str, str], dict[str, bool]] = {}
        self.schedules: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def _key(self, request: Request) -> tuple[str, str]:
        account, script = request.params["account"], request.params["script"]
        self.api.emulator.store.script(account, script)  # 10007 when missing
        return account, script

    def service(self, request: Request, _: Author) -> Response:
        store = self.api.emulator.store
        account, name = request.params["account"], request.params["script"]
        with store.lock:
            script = store.script(account, name)
            latest = script.latest
            summary = script.summary()
            code = latest.code if latest is not None else None
            tags = self.script_settings.get((account, name), {}).get("tags") or []
            body = {
                "id": name,
                "default_environment": {
                    "environment": "production",
                    "created_on": script.created_on,
                    "modified_on": script.modified_on,
                    "script": {
                        "id": name,
                        "tag": summary["etag"][:32],
                        "tags": tags,
                        "etag": summary["etag"],
                        "handlers": ["fetch"],
                        "modified_on": script.modified_on,
                        "created_on": script.created_on,
                        "migration_tag": "",
                        "usage_model": "standard",
                        "limits": {"cpu_ms": 30000, "subrequests": 50},
                        "compatibility_date": latest.compatibility_date if latest is not None else "2025-01-01",
                        "compatibility_flags": list(code.compatibility_flags) if code is not None else [],
                        "last_deployed_from": latest.author.source if latest is not None else "api",
                    },
                },
                "created_on": script.created_on,
                "modified_on": script.modified_on,
                "usage_model": "standard",
                "environments": [
                    {"environment": "production", "created_on": script.created_on, "modified_on": script.modified_on}
                ],
            }
        return success(body)

    def beta_worker(self, request: Request, _: Author) -> Response:
        store = self.api.emulator.store
        account, name = self._key(request)
        with store.lock:
            script = store.script(account, name)
            deployment = script.deployment
            extra = self.script_settings.get((account, name), {})
            subdomain = self.subdomains.get((account, name), {"enabled": False, "previews_enabled": False})
            return success(
                {
                    "id": name,
                    "name": name,
                    "created_on": script.created_on,
                    "updated_on": script.modified_on,
                    "deployed_on": deployment.created_on if deployment is not None else None,
                    "logpush": bool(extra.get("logpush", False)),
                    "observability": extra.get("observability") or {"enabled": False},
                    "references": {
                        "dispatch_namespace_outbounds": [],
                        "domains": [],
                        "durable_objects": [],
                        "queues": [],
                        "workers": [],
                    },
                    "subdomain": subdomain,
                    "tags": extra.get("tags") or [],
                    "tail_consumers": extra.get("tail_consumers") or [],
                    "preview_defaults": extra.get("preview_defaults") or {},
                    "previews_base_config": extra.get("previews_base_config") or {},
                }
            )

    def patch_beta_worker(self, request: Request, author: Author) -> Response:
        body: Any = parse_json_body(request.body)
        if not isinstance(body, dict):
            raise ApiError(400, INVALID_BINDING, "the body must be a JSON object")
        key = self._key(request)
        kept = {k: v for k, v in body.items() if k in ("preview_defaults", "previews_base_config", "tags", "logpush")}
        with self.api.emulator.store.lock:
            self.script_settings[key] = {**self.script_settings.get(key, {}), **kept}
        return self.beta_worker(request, author)

    def get_script_settings(self, request: Request, _: Author) -> Response:
        defaults: dict[str, Any] = {
            "logpush": False,
            "tail_consumers": None,
            "observability": {"enabled": False},
            "tags": [],
        }
        return success({**defaults, **self.script_settings.get(self._key(request), {})})

    def patch_script_settings(self, request: Request, _: Author) -> Response:
        body: Any = parse_json_body(request.body)
        if not isinstance(body, dict):
            raise ApiError(400, INVALID_BINDING, "the body must be a JSON object")
        key = self._key(request)
        with self.api.emulator.store.lock:
            self.script_settings[key] = {**self.script_settings.get(key, {}), **body}
        return self.get_script_settings(request, _)

    def account_subdomain(self, request: Request, _: Author) -> Response:
        return success({"subdomain": ACCOUNT_SUBDOMAIN})

    def get_subdomain(self, request: Request, _: Author) -> Response:
        return success(self.subdomains.get(self._key(request), {"enabled": False, "previews_enabled": False}))

    def post_subdomain(self, request: Request, _: Author) -> Response:
        body: Any = parse_json_body(request.body)
        if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
            raise ApiError(400, INVALID_BINDING, '"enabled" must be true or false')
        previews = body.get("previews_enabled", body["enabled"])
        self.subdomains[self._key(request)] = {"enabled": body["enabled"], "previews_enabled": bool(previews)}
        return self.get_subdomain(request, _)

    def get_schedules(self, request: Request, _: Author) -> Response:
        return success({"schedules": self.schedules.get(self._key(request), [])})

    def put_schedules(self, request: Request, _: Author) -> Response:
        body: Any = parse_json_body(request.body)
        schedules = body if isinstance(body, list) else (body or {}).get("schedules", [])
        if not isinstance(schedules, list):
            raise ApiError(400, INVALID_BINDING, "schedules must be a list")
        self.schedules[self._key(request)] = schedules
        return self.get_schedules(request, _)


def register_service_routes(router: Router, api: CloudflareApi) -> None:
    routes = ServiceRoutes(api)
    guarded = api._guarded
    prefix = "/client/v4"
    router.add(["GET"], prefix + ACCOUNT + r"/workers/services/(?P<script>[^/]+)", guarded("read", routes.service))
    beta = prefix + ACCOUNT + r"/workers/workers/(?P<script>[^/]+)"
    router.add(["GET"], beta, guarded("read", routes.beta_worker))
    router.add(["PATCH"], beta, guarded("write", routes.patch_beta_worker))
    router.add(["GET"], prefix + ACCOUNT + r"/workers/subdomain", guarded("read", routes.account_subdomain))
    router.add(["GET"], prefix + SCRIPT + "/script-settings", guarded("read", routes.get_script_settings))
    router.add(["PATCH"], prefix + SCRIPT + "/script-settings", guarded("write", routes.patch_script_settings))
    router.add(["GET"], prefix + SCRIPT + "/subdomain", guarded("read", routes.get_subdomain))
    router.add(["POST"], prefix + SCRIPT + "/subdomain", guarded("write", routes.post_subdomain))
    router.add(["GET"], prefix + SCRIPT + "/schedules", guarded("read", routes.get_schedules))
    router.add(["PUT"], prefix + SCRIPT + "/schedules", guarded("write", routes.put_schedules))
