"""Versions, deployments and settings of a script: reads, the edits that make versions, admin edits.

Behaviour and sources (see ``versions`` for the wire shapes):

- ``list_versions``: newest first, paged by ``page``/``per_page`` (``deployable=true`` ignores
  paging, SDK ``VersionListParams``). Default and maximum ``per_page`` are UNVERIFIED
  (``EmulatorConfig.versions_per_page`` / ``max_per_page``).
- ``create_deployment``: strategy ``"percentage"``, one or two known versions, percentages
  summing to 100 (SDK ``DeploymentCreateParams``; wrangler ``createDeployment``). The error code
  for a bad body is UNVERIFIED. Rolling back to a version older than the one serving, whose secrets
  differ from it, is refused with 10220 (400) naming the changed secrets unless ``?force=true``
  (wrangler ``versions/rollback``: ``CANNOT_ROLLBACK_WITH_MODIFIED_SECERT_CODE`` and the message
  in its ``rollback.test.ts``). The admin API's deploy is not refused.
- ``patch_latest`` (``PATCH /accounts/{a}/workers/workers/{w}/versions/latest``): the JSON merge
  patch wrangler's ``versions secret put/bulk/delete`` send (``patchLatestWorkerVersionWithSecrets``):
  ``{"env": {NAME: {"type": "secret_text", "text"} | null}, "annotations": {...}}``. A binding given
  as only ``{type, name}`` (or ``{"type": "inherit"}``) keeps its value. The new version is NOT
  deployed. 10222 when the script has no versions.
- ``patch_settings`` (``PATCH .../settings``, multipart ``settings``): when ``bindings`` is given it
  is the complete new binding list; an entry with only ``{type, name}`` is inherited from the
  latest version (older wrangler ``secret bulk``: "any existing bindings can be inherited ... by
  just providing the name and type fields"). Refused with 10214 while the latest version is not
  fully deployed; otherwise the new version is deployed at 100 %. ``annotations`` are not
  inherited across settings updates (SDK ``SettingsAnnotations``).
"""

from __future__ import annotations

from typing import Any

from syncd.devstack.cloudflare.envelope import (
    INVALID_BINDING,
    INVALID_DEPLOYMENT,
    NO_VERSIONS,
    NO_VERSIONS_MESSAGE,
    ROLLBACK_WITH_CHANGED_SECRETS,
    ApiError,
)
from syncd.devstack.cloudflare.store import ADMIN_AUTHOR, Script, WorkerStore
from syncd.devstack.cloudflare.validation import SECRET_TYPES, check_binding_name, invalid, validate_secret
from syncd.devstack.cloudflare.versions import (
    TRIGGER_DEPLOYMENT,
    TRIGGER_SECRET,
    TRIGGER_SETTINGS,
    TRIGGER_UPLOAD,
    Author,
    Deployment,
    Version,
    clean_annotations,
)

VALUE_FIELDS = ("text", "key_base64", "key_jwk")
Target = tuple[str, str, str | None]  # account, script, namespace


class Lifecycle:
    """Version and deployment operations over a ``WorkerStore`` (same lock, same rules)."""

    def __init__(self, store: WorkerStore) -> None:
        self.store = store

    # -- reads ----------------------------------------------------------------------------------

    def list_versions(
        self, target: Target, page: int, per_page: int, *, everything: bool = False
    ) -> tuple[list[Version], int]:
        """One page of versions, newest first, and the total count."""
        with self.store.lock:
            newest_first = list(reversed(self.store.script(*target).history))
        if everything:
            return newest_first, len(newest_first)
        start = (page - 1) * per_page
        return newest_first[start : start + per_page], len(newest_first)

    def version(self, target: Target, ref: str, *, by_number: bool = False) -> Version:
        with self.store.lock:
            return self.store.script(*target).version(ref, by_number=by_number)

    def deployments(self, target: Target) -> list[Deployment]:
        """Newest first: the first one is the deployment serving traffic."""
        with self.store.lock:
            return list(reversed(self.store.script(*target).deployments))

    def deployment(self, target: Target, deployment_id: str) -> Deployment:
        for deployment in self.deployments(target):
            if deployment.id == deployment_id:
                return deployment
        raise ApiError(404, INVALID_DEPLOYMENT, f"Deployment {deployment_id} not found.")

    def settings(self, target: Target) -> dict[str, Any]:
        with self.store.lock:
            script = self.store.script(*target)
            latest = script.latest
            return settings_view(latest)

    # -- API writes -----------------------------------------------------------------------------

    def create_deployment(self, target: Target, body: Any, author: Author, *, force: bool = False) -> Deployment:
        with self.store.lock:
            script = self.store.script(*target)
            split = _split(script, body)
            if not force:
                _refuse_rollback_with_changed_secrets(script, split)
            annotations = clean_annotations(body.get("annotations"))
            annotations.pop("workers/tag", None)
            annotations["workers/triggered_by"] = TRIGGER_DEPLOYMENT
            return self.store.deploy(script, split, author, annotations)

    def patch_latest(self, target: Target, body: Any, author: Author) -> Version:
        if not isinstance(body, dict) or not isinstance(body.get("env", {}), dict):
            raise ApiError(400, INVALID_BINDING, 'the body must be a JSON merge patch object with an "env" object')
        with self.store.lock:
            script = self.store.script(*target)
            latest = script.latest
            if latest is None:
                raise ApiError(400, NO_VERSIONS, NO_VERSIONS_MESSAGE)
            plain_text, secrets = dict(latest.plain_text), dict(latest.secrets)
            for name, change in body.get("env", {}).items():
                _merge_binding(self.store, name, change, plain_text, secrets)
            self.store.check_binding_count(plain_text, secrets)
            annotations = clean_annotations(body.get("annotations"))
            return self.store.commit(script, plain_text, secrets, author, TRIGGER_SECRET, annotations, deploy=False)

    def patch_settings(self, target: Target, settings: dict[str, Any], author: Author) -> dict[str, Any]:
        with self.store.lock:
            script = self.store.script(*target)
            self.store.refuse_when_undeployed(script, bulk=True)
            plain_text, secrets = dict(script.plain_text), dict(script.secrets)
            others: dict[str, dict[str, Any]] | None = None  # None: the latest version's
            if settings.get("bindings") is not None:
                plain_text, secrets, others = _settings_bindings(self.store, script, settings["bindings"])
            self.store.check_binding_count(plain_text, secrets)
            annotations = clean_annotations(settings.get("annotations"))
            version = self.store.commit(
                script,
                plain_text,
                secrets,
                author,
                TRIGGER_SETTINGS,
                annotations,
                deploy=True,
                other_bindings=others,
            )
            return settings_view(version)

    # -- admin edits (the admin API; no auth, no rate limit, no refusal) ---------------------------

    def hand_edit(
        self,
        target: Target,
        upserts: dict[str, Any],
        deletes: list[str],
        author: Author,
        *,
        deploy: bool = True,
        message: str | None = None,
    ) -> Version:
        """A secret edit as another person would make it (dashboard, wrangler), deployed by default."""
        with self.store.lock:
            script = self.store.script(*target)
            secrets = dict(script.secrets)
            for name, body in upserts.items():
                secrets[name] = validate_secret(body, self.store.config, expected_name=name)
            for name in deletes:
                if secrets.pop(name, None) is None:
                    raise ValueError(f"script {script.name} has no secret {name}")
            annotations = {"workers/message": message} if message else {}
            return self.store.commit(
                script, dict(script.plain_text), secrets, author, TRIGGER_SECRET, annotations, deploy=deploy
            )

    def upload_code(
        self,
        target: Target,
        author: Author = ADMIN_AUTHOR,
        *,
        keep_secrets: bool = True,
        plain_text: dict[str, str] | None = None,
        deploy: bool = False,
        message: str | None = None,
    ) -> Version:
        """A new code version: secrets kept (``keep_bindings``) or dropped; deployed or not."""
        with self.store.lock:
            script = self.store.script(*target)
            secrets = dict(script.secrets) if keep_secrets else {}
            text = dict(script.plain_text if plain_text is None else plain_text)
            annotations = {"workers/message": message} if message else {}
            return self.store.commit(script, text, secrets, author, TRIGGER_UPLOAD, annotations, deploy=deploy)

    def admin_deploy(self, target: Target, split: list[tuple[str, float]], author: Author) -> Deployment:
        """Deploy versions given by id or number; same checks as the API."""
        with self.store.lock:
            script = self.store.script(*target)
            body = {
                "strategy": "percentage",
                "versions": [
                    {"version_id": script.version(ref, by_number=True).id, "percentage": pct} for ref, pct in split
                ],
            }
            resolved = _split(script, body)
            return self.store.deploy(script, resolved, author, {"workers/triggered_by": TRIGGER_DEPLOYMENT})


def settings_view(version: Version | None) -> dict[str, Any]:
    """``GET .../settings``: bindings without values, plus the script-level defaults."""
    return {
        "bindings": version.bindings() if version is not None else [],
        "annotations": {} if version is None else dict(version.annotations),
        "compatibility_date": "2025-01-01",
        "compatibility_flags": [],
        "logpush": False,
        "placement": {},
        "tail_consumers": [],
        "usage_model": "standard",
        "limits": {},
    }


def _split(script: Script, body: Any) -> list[tuple[str, float]]:
    if not isinstance(body, dict) or body.get("strategy") != "percentage":
        raise ApiError(400, INVALID_DEPLOYMENT, 'strategy must be "percentage"')
    entries = body.get("versions")
    if not isinstance(entries, list) or not 1 <= len(entries) <= 2:
        raise ApiError(400, INVALID_DEPLOYMENT, "versions must list one or two versions")
    split: list[tuple[str, float]] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("version_id"), str):
            raise ApiError(400, INVALID_DEPLOYMENT, "every version needs a version_id and a percentage")
        percentage = entry.get("percentage")
        if not isinstance(percentage, int | float) or isinstance(percentage, bool) or not 0 <= percentage <= 100:
            raise ApiError(400, INVALID_DEPLOYMENT, "percentage must be a number from 0 to 100")
        split.append((script.version(entry["version_id"]).id, percentage))
    if len({version_id for version_id, _ in split}) != len(split):
        raise ApiError(400, INVALID_DEPLOYMENT, "a version may appear only once in a deployment")
    if sum(pct for _, pct in split) != 100:
        raise ApiError(400, INVALID_DEPLOYMENT, "the percentages must sum to 100")
    return split


def _refuse_rollback_with_changed_secrets(script: Script, split: list[tuple[str, float]]) -> None:
    deployment = script.deployment
    if deployment is None:
        return
    serving = max((script.version(version_id) for version_id, _ in deployment.split), key=lambda v: v.number)
    changed: set[str] = set()
    for version_id, _ in split:
        version = script.version(version_id)
        if version.number < serving.number:
            names = set(version.secrets) | set(serving.secrets)
            changed |= {name for name in names if version.secrets.get(name) != serving.secrets.get(name)}
    if changed:
        raise ApiError(
            400,
            ROLLBACK_WITH_CHANGED_SECRETS,
            "A secret has changed since this version was active. If you are sure this is ok, add a "
            "?force=true query parameter to allow the rollback. The following secrets have changed: "
            + ", ".join(sorted(changed)),
        )


def _has_value(binding: dict[str, Any]) -> bool:
    return any(key in binding for key in VALUE_FIELDS)


def _merge_binding(
    store: WorkerStore, name: str, change: Any, plain_text: dict[str, str], secrets: dict[str, dict[str, Any]]
) -> None:
    """One ``env`` entry of the merge patch: null deletes, a value sets, ``{type, name}`` keeps."""
    if change is None:
        plain_text.pop(name, None)
        secrets.pop(name, None)
        return
    if not isinstance(change, dict):
        raise invalid(name, "unknown", "an env entry must be an object or null")
    kind = change.get("type")
    if kind == "inherit" or (kind in (*SECRET_TYPES, "plain_text") and not _has_value(change)):
        if name not in secrets and name not in plain_text:
            raise invalid(name, str(kind), "there is no binding of that name in the latest version to inherit")
        return
    if kind == "plain_text":
        check_binding_name(name, "plain_text", store.config)
        if not isinstance(change.get("text"), str):
            raise invalid(name, "plain_text", "text must be a string")
        secrets.pop(name, None)
        plain_text[name] = change["text"]
        return
    secret = validate_secret({**change, "name": change.get("name", name)}, store.config, expected_name=name)
    plain_text.pop(name, None)
    secrets[name] = secret


def _settings_bindings(
    store: WorkerStore, script: Script, bindings: list[dict[str, Any]]
) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Plain text, secrets and the other bindings (``secrets_store_secret``, ...) of a settings edit."""
    plain_text: dict[str, str] = {}
    secrets: dict[str, dict[str, Any]] = {}
    others: dict[str, dict[str, Any]] = {}
    previous_others = script.latest.other_bindings if script.latest is not None else {}
    for binding in bindings:
        name = check_binding_name(binding.get("name"), str(binding.get("type")), store.config)
        kind = binding.get("type")
        if kind == "inherit" or (kind in (*SECRET_TYPES, "plain_text") and not _has_value(binding)):
            if name in script.secrets:
                secrets[name] = script.secrets[name]
            elif name in script.plain_text:
                plain_text[name] = script.plain_text[name]
            elif name in previous_others:
                others[name] = previous_others[name]
            else:
                raise invalid(name, str(kind), "there is no binding of that name in the latest version to inherit")
        elif kind == "plain_text":
            _merge_binding(store, name, binding, plain_text, secrets)
        elif kind in SECRET_TYPES:
            secrets[name] = validate_secret(binding, store.config)
        else:
            others[name] = dict(binding)
    return plain_text, secrets, others
