"""Accounts, Worker scripts, dispatch namespaces, their versions and deployments, with the write rules.

All state lives here, guarded by the emulator's one ``RLock`` (``EmulatorState.lock``), so any
number of request threads can write at once without losing a write. Every successful change
makes exactly one new Worker version (``versions.Version``). Secret PUT/DELETE, ``secrets-bulk``,
settings PATCH and script upload also deploy it at 100 % (a new ``Deployment``), as the real API
does; a version upload (``POST .../versions``) and ``PATCH .../versions/latest`` do not.

Secret edits are refused while the latest version is not the one deployed at 100 % (a gradual
deployment, a rollback, an undeployed upload): 10215 for PUT/DELETE, 10214 for bulk PATCH and
settings PATCH, derived from the versions and deployments (wrangler ``secret/index.ts``,
``VERSION_NOT_DEPLOYED_ERR_CODE = 10215``; the 10214 text from issues quoting the live API).
"""

from __future__ import annotations

import hashlib
import secrets as random_tokens
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from syncd.devstack.cloudflare.auth import DEFAULT_USER_EMAIL, user_id_of
from syncd.devstack.cloudflare.code import WorkerCode
from syncd.devstack.cloudflare.config import EmulatorConfig
from syncd.devstack.cloudflare.envelope import (
    BINDING_NAME_IN_USE,
    BINDING_NOT_FOUND,
    INVALID_BINDING,
    NAMESPACE_NOT_FOUND,
    SCRIPT_EDIT_NOT_DEPLOYED,
    SCRIPT_EDIT_NOT_DEPLOYED_MESSAGE,
    SECRET_EDIT_NOT_DEPLOYED,
    SECRET_EDIT_NOT_DEPLOYED_MESSAGE,
    VERSION_NOT_FOUND,
    WORKER_NOT_FOUND,
    ApiError,
)
from syncd.devstack.cloudflare.upload import ScriptUpload
from syncd.devstack.cloudflare.upload_bindings import resolve_upload
from syncd.devstack.cloudflare.validation import (
    check_script_name,
    is_valid_script_name,
    public_view,
    validate_secret,
)
from syncd.devstack.cloudflare.versions import (
    TRIGGER_SECRET,
    TRIGGER_UPLOAD,
    Author,
    Deployment,
    Version,
    clean_annotations,
    new_id,
)
from syncd.devstack.httpkit import Clock

API_AUTHOR = Author(DEFAULT_USER_EMAIL, user_id_of(DEFAULT_USER_EMAIL), "api")
ADMIN_AUTHOR = Author(DEFAULT_USER_EMAIL, user_id_of(DEFAULT_USER_EMAIL), "wrangler")
HAND_EDITOR_EMAIL = "someone.else@example.com"
HAND_EDITOR = Author(HAND_EDITOR_EMAIL, user_id_of(HAND_EDITOR_EMAIL), "dash")


def _timestamp(clock: Clock) -> str:
    return datetime.fromtimestamp(clock.now(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Script:
    """A Worker script: its versions (oldest first) and deployments (oldest first)."""

    name: str
    created_on: str
    modified_on: str
    history: list[Version] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)

    @property
    def latest(self) -> Version | None:
        return self.history[-1] if self.history else None

    @property
    def secrets(self) -> dict[str, dict[str, Any]]:
        """The latest version's secrets (what ``GET .../secrets`` lists)."""
        latest = self.latest
        return latest.secrets if latest is not None else {}

    @property
    def plain_text(self) -> dict[str, str]:
        latest = self.latest
        return latest.plain_text if latest is not None else {}

    @property
    def versions(self) -> int:
        """The latest version number (0 without versions)."""
        latest = self.latest
        return latest.number if latest is not None else 0

    @property
    def deployment(self) -> Deployment | None:
        return self.deployments[-1] if self.deployments else None

    def latest_fully_deployed(self) -> bool:
        """The condition for secret and settings edits: the latest version serves 100 %."""
        latest, deployment = self.latest, self.deployment
        if latest is None:
            return True  # nothing deployed, nothing to protect: the first edit makes version 1
        return deployment is not None and deployment.split == [(latest.id, 100)]

    def version(self, ref: str, *, by_number: bool = False) -> Version:
        """A version by id (or, for the admin API, by number); 404 when unknown."""
        for version in self.history:
            if version.id == ref or (by_number and str(version.number) == ref):
                return version
        raise ApiError(404, VERSION_NOT_FOUND, f"Version {ref} not found for this Worker.")

    def summary(self) -> dict[str, Any]:
        etag = hashlib.sha256(f"{self.name}:{self.versions}".encode()).hexdigest()
        return {
            "id": self.name,
            "etag": etag,
            "created_on": self.created_on,
            "modified_on": self.modified_on,
            "has_modules": True,
            "usage_model": "standard",
        }


@dataclass
class Account:
    account_id: str
    scripts: dict[str, Script] = field(default_factory=dict)
    namespaces: dict[str, dict[str, Script]] = field(default_factory=dict)


class WorkerStore:
    """The emulator's data. Public methods take the lock; ``ApiError`` carries real API failures."""

    def __init__(self, lock: threading.RLock, clock: Clock, config: EmulatorConfig) -> None:
        self.lock = lock
        self.clock = clock
        self.config = config
        self.accounts: dict[str, Account] = {}
        # Called (under the lock: must be quick, e.g. set an event) after every new deployment,
        # i.e. whenever what is deployed changes: the devstack's Workers runtime reloads on it.
        self.deploy_listeners: list[Callable[[], None]] = []

    # -- accounts, namespaces, scripts ---------------------------------------------------------

    def create_account(self, account_id: str | None = None) -> str:
        new_id = account_id or random_tokens.token_hex(16)
        with self.lock:
            if new_id in self.accounts:
                raise ValueError(f"account {new_id} already exists")
            self.accounts[new_id] = Account(new_id)
        return new_id

    def has_account(self, account_id: str) -> bool:
        with self.lock:
            return account_id in self.accounts

    def create_namespace(self, account_id: str, name: str) -> None:
        with self.lock:
            account = self._account(account_id)
            if name in account.namespaces:
                raise ValueError(f"dispatch namespace {name} already exists")
            account.namespaces[name] = {}

    def create_script(
        self,
        account_id: str,
        name: str,
        plain_text: dict[str, str] | None = None,
        namespace: str | None = None,
        *,
        with_version: bool = True,
    ) -> Script:
        """Create a script with version 1 deployed (the admin API and ``scripts=``).

        ``with_version=False`` makes a script without any version (what 10222 is about).
        """
        if not is_valid_script_name(name):
            raise ValueError(f"invalid script name {name!r}: must match ^[a-z0-9_][a-z0-9-_]*$")
        with self.lock:
            scripts = self._scripts(account_id, namespace)
            if name in scripts:
                raise ValueError(f"script {name} already exists")
            now = _timestamp(self.clock)
            script = Script(name, now, now)
            if with_version:
                self.commit(script, dict(plain_text or {}), {}, ADMIN_AUTHOR, TRIGGER_UPLOAD, deploy=True)
            scripts[name] = script
            return script

    def upload_script(
        self,
        account_id: str,
        name: str,
        namespace: str | None,
        upload: ScriptUpload,
        author: Author = API_AUTHOR,
        *,
        deploy: bool = True,
    ) -> dict[str, Any]:
        """The real upload: creates or replaces the script; one new version, deployed.

        With ``deploy=False`` it is ``POST .../versions`` (a version upload, not deployed), which
        needs the script to exist.
        """
        check_script_name(name)
        with self.lock:
            scripts = self._scripts(account_id, namespace)
            now = _timestamp(self.clock)
            script = scripts.get(name)
            if script is None:
                if not deploy:
                    raise _worker_not_found()
                script = Script(name, now, now)
                scripts[name] = script
            plain_text, secrets, others = resolve_upload(script, upload, self.config)
            annotations = clean_annotations(upload.annotations)
            version = self.commit(
                script,
                plain_text,
                secrets,
                author,
                TRIGGER_UPLOAD,
                annotations,
                deploy=deploy,
                code=upload.code,
                other_bindings=others,
            )
            if deploy:
                # wrangler prints ``deployment_id`` as "Current Version ID" (deploy-helpers deploy.ts
                # fills it with the version id on its versions-API path too).
                return {**script.summary(), "deployment_id": version.id, "startup_time_ms": 1}
            return {**version.detail(script.name), "startup_time_ms": 1}

    def script(self, account_id: str, name: str, namespace: str | None = None) -> Script:
        """The script, or 10007 (404); an unknown dispatch namespace is 100119 (404)."""
        with self.lock:
            script = self._scripts(account_id, namespace).get(name)
            if script is None:
                raise _worker_not_found()
            return script

    # -- secrets ------------------------------------------------------------------------------

    def list_secrets(self, account_id: str, name: str, namespace: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [public_view(s) for s in self.script(account_id, name, namespace).secrets.values()]

    def get_secret(self, account_id: str, name: str, namespace: str | None, secret_name: str) -> dict[str, Any]:
        with self.lock:
            secret = self.script(account_id, name, namespace).secrets.get(secret_name)
            if secret is None:
                raise _binding_not_found(secret_name)
            return public_view(secret)

    def put_secret(
        self, account_id: str, name: str, namespace: str | None, body: Any, author: Author = API_AUTHOR
    ) -> dict[str, Any]:
        """One secret: a new version with it, deployed at 100 % (10215 when the latest is not)."""
        with self.lock:
            script = self.script(account_id, name, namespace)
            secret = validate_secret(body, self.config)
            self.refuse_when_undeployed(script, bulk=False)
            self._check_bindings(script, {secret["name"]: secret})
            secrets = {**script.secrets, secret["name"]: secret}
            self.commit(script, dict(script.plain_text), secrets, author, TRIGGER_SECRET, deploy=True)
            return public_view(secret)

    def delete_secret(
        self, account_id: str, name: str, namespace: str | None, secret_name: str, author: Author = API_AUTHOR
    ) -> None:
        with self.lock:
            script = self.script(account_id, name, namespace)
            self.refuse_when_undeployed(script, bulk=False)
            if secret_name not in script.secrets:
                raise _binding_not_found(secret_name)
            secrets = {key: value for key, value in script.secrets.items() if key != secret_name}
            self.commit(script, dict(script.plain_text), secrets, author, TRIGGER_SECRET, deploy=True)

    def bulk_patch(
        self, account_id: str, name: str, namespace: str | None, body: Any, author: Author = API_AUTHOR
    ) -> dict[str, Any]:
        """JSON merge patch of the secrets: all or nothing, one version for the whole call, deployed.

        ``version_tags`` (SDK: "Optional version tags to apply to the new script version") become
        the version's annotations; only ``workers/message`` and ``workers/tag`` are kept (UNVERIFIED).
        """
        with self.lock:
            script = self.script(account_id, name, namespace)
            changes = self._bulk_changes(body)
            tags = body.get("version_tags", {})
            if not isinstance(tags, dict):
                raise ApiError(400, INVALID_BINDING, '"version_tags" must be an object')
            self.refuse_when_undeployed(script, bulk=True)
            upserts = {key: value for key, value in changes.items() if value is not None}
            self._check_bindings(script, upserts, deleted={key for key, v in changes.items() if v is None})
            secrets = dict(script.secrets)
            for key, value in changes.items():
                if value is None:
                    secrets.pop(key, None)
                else:
                    secrets[key] = value
            annotations = clean_annotations(tags)
            self.commit(script, dict(script.plain_text), secrets, author, TRIGGER_SECRET, annotations, deploy=True)
            return {key: public_view(secret) for key, secret in secrets.items()}

    # -- versions and deployments ---------------------------------------------------------------

    def commit(  # noqa: PLR0917 - one place that makes every version
        self,
        script: Script,
        plain_text: dict[str, str],
        secrets: dict[str, dict[str, Any]],
        author: Author,
        trigger: str,
        annotations: dict[str, str] | None = None,
        *,
        deploy: bool,
        code: WorkerCode | None = None,
        other_bindings: dict[str, dict[str, Any]] | None = None,
    ) -> Version:
        """Append a version (and, with ``deploy``, a deployment of it at 100 %). Call under the lock.

        ``code`` and ``other_bindings`` default to the latest version's: only an upload changes them.
        """
        now = _timestamp(self.clock)
        latest = script.latest
        version = Version(
            id=new_id(),
            number=script.versions + 1,
            created_on=now,
            author=author,
            annotations={**(annotations or {}), "workers/triggered_by": trigger},
            plain_text=plain_text,
            secrets=secrets,
            other_bindings=dict(latest.other_bindings if other_bindings is None and latest else other_bindings or {}),
            code=code if code is not None else (latest.code if latest is not None else None),
        )
        script.history.append(version)
        script.modified_on = now
        if deploy:
            self.deploy(script, [(version.id, 100)], author, {"workers/triggered_by": trigger})
        return version

    def deploy(
        self, script: Script, split: list[tuple[str, float]], author: Author, annotations: dict[str, str]
    ) -> Deployment:
        """A new deployment; ``split`` names known versions and sums to 100. Call under the lock."""
        deployment = Deployment(new_id(), _timestamp(self.clock), author, list(split), dict(annotations))
        script.deployments.append(deployment)
        for listener in self.deploy_listeners:
            listener()
        return deployment

    # -- helpers ------------------------------------------------------------------------------

    def _bulk_changes(self, body: Any) -> dict[str, dict[str, Any] | None]:
        if not isinstance(body, dict) or not isinstance(body.get("secrets", {}), dict):
            raise ApiError(400, INVALID_BINDING, 'the body must be an object with a "secrets" object')
        raw: dict[str, Any] = body.get("secrets", {})
        if len(raw) > self.config.max_bulk_secrets:
            raise ApiError(
                400,
                INVALID_BINDING,
                f"too many secrets in one request: {len(raw)}, the limit is {self.config.max_bulk_secrets}",
            )
        changes: dict[str, dict[str, Any] | None] = {}
        for key, value in raw.items():
            changes[key] = None if value is None else validate_secret(value, self.config, expected_name=key)
        return changes

    def check_binding_count(self, plain_text: dict[str, str], secrets: dict[str, Any]) -> None:
        total = len(set(secrets) | set(plain_text))
        if total > self.config.max_variables:
            raise ApiError(
                400,
                INVALID_BINDING,
                f"too many environment variables: {total} (secrets and plain text together), "
                f"the limit is {self.config.max_variables}",
            )

    def _check_bindings(
        self, script: Script, upserts: dict[str, dict[str, Any]], deleted: set[str] | None = None
    ) -> None:
        for secret_name in upserts:
            if secret_name in script.plain_text:
                raise ApiError(
                    400,
                    BINDING_NAME_IN_USE,
                    f"Binding name '{secret_name}' already in use. Please use a different name and try again.",
                )
        names = (set(script.secrets) - (deleted or set())) | set(upserts)
        self.check_binding_count(script.plain_text, dict.fromkeys(names))

    def refuse_when_undeployed(self, script: Script, *, bulk: bool) -> None:
        """10215 (single secret) / 10214 (bulk, settings) while the latest version is not fully deployed."""
        if script.latest_fully_deployed():
            return
        if bulk:
            raise ApiError(self.config.undeployed_status, SCRIPT_EDIT_NOT_DEPLOYED, SCRIPT_EDIT_NOT_DEPLOYED_MESSAGE)
        raise ApiError(self.config.undeployed_status, SECRET_EDIT_NOT_DEPLOYED, SECRET_EDIT_NOT_DEPLOYED_MESSAGE)

    def _account(self, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise _worker_not_found()
        return account

    def _scripts(self, account_id: str, namespace: str | None) -> dict[str, Script]:
        account = self._account(account_id)
        if namespace is None:
            return account.scripts
        scripts = account.namespaces.get(namespace)
        if scripts is None:
            raise ApiError(404, NAMESPACE_NOT_FOUND, f"Dispatch namespace '{namespace}' not found.")
        return scripts


def _worker_not_found() -> ApiError:
    return ApiError(404, WORKER_NOT_FOUND, "This Worker does not exist on your account.")


def _binding_not_found(secret_name: str) -> ApiError:
    return ApiError(
        404, BINDING_NOT_FOUND, f"Binding '{secret_name}' not found. Please use a different name and try again."
    )
