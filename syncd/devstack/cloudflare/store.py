"""Accounts, Worker scripts, dispatch namespaces and their secrets, with the write rules.

All state lives here, guarded by the emulator's one ``RLock`` (``EmulatorState.lock``), so any
number of request threads can write at once without losing a write. Every successful change
(PUT, DELETE, bulk PATCH, script upload) adds exactly one Worker version. A script marked
``undeployed`` (its latest version is not the deployed one) refuses secret edits: 10215 for
PUT/DELETE, 10214 for bulk PATCH.
"""

from __future__ import annotations

import hashlib
import secrets as random_tokens
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
    WORKER_NOT_FOUND,
    ApiError,
)
from syncd.devstack.cloudflare.validation import (
    check_binding_name,
    check_script_name,
    is_valid_script_name,
    public_view,
    validate_secret,
)
from syncd.devstack.httpkit import Clock


def _timestamp(clock: Clock) -> str:
    return datetime.fromtimestamp(clock.now(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Script:
    name: str
    created_on: str
    modified_on: str
    plain_text: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: int = 1
    undeployed: bool = False

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
        self, account_id: str, name: str, plain_text: dict[str, str] | None = None, namespace: str | None = None
    ) -> Script:
        """Create a deployed script with one version (the admin API and ``scripts=``)."""
        if not is_valid_script_name(name):
            raise ValueError(f"invalid script name {name!r}: must match ^[a-z0-9_][a-z0-9-_]*$")
        with self.lock:
            scripts = self._scripts(account_id, namespace)
            if name in scripts:
                raise ValueError(f"script {name} already exists")
            now = _timestamp(self.clock)
            script = Script(name, now, now, plain_text=dict(plain_text or {}))
            scripts[name] = script
            return script

    def upload_script(
        self, account_id: str, name: str, namespace: str | None, bindings: list[dict[str, Any]], keep: set[str]
    ) -> dict[str, Any]:
        """The real upload: creates or replaces the script; one new version, deployed."""
        check_script_name(name)
        plain_text: dict[str, str] = {}
        uploaded_secrets: dict[str, dict[str, Any]] = {}
        for binding in bindings:
            kind = binding.get("type")
            if kind == "plain_text":
                var_name = check_binding_name(binding.get("name"), "plain_text", self.config)
                text = binding.get("text")
                if not isinstance(text, str):
                    raise ApiError(400, INVALID_BINDING, f"binding {var_name} of type plain_text is invalid")
                plain_text[var_name] = text
            elif kind in ("secret_text", "secret_key"):
                secret = validate_secret(binding, self.config)
                uploaded_secrets[secret["name"]] = secret
        with self.lock:
            scripts = self._scripts(account_id, namespace)
            now = _timestamp(self.clock)
            script = scripts.get(name)
            if script is None:
                script = Script(name, now, now, versions=0)
                scripts[name] = script
            kept = {
                secret_name: secret
                for secret_name, secret in script.secrets.items()
                if secret["type"] in keep and secret_name not in plain_text
            }
            script.plain_text = plain_text if "plain_text" not in keep else {**script.plain_text, **plain_text}
            script.secrets = {**kept, **uploaded_secrets}
            script.versions += 1
            script.undeployed = False
            script.modified_on = now
            return script.summary()

    def set_undeployed(self, account_id: str, name: str, undeployed: bool, namespace: str | None = None) -> None:
        with self.lock:
            self.script(account_id, name, namespace).undeployed = undeployed

    def script(self, account_id: str, name: str, namespace: str | None = None) -> Script:
        """The script, or 10007 (404); an unknown dispatch namespace is 100119 (404)."""
        with self.lock:
            script = self._scripts(account_id, namespace).get(name)
            if script is None:
                raise ApiError(404, WORKER_NOT_FOUND, "This Worker does not exist on your account.")
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

    def put_secret(self, account_id: str, name: str, namespace: str | None, body: Any) -> dict[str, Any]:
        with self.lock:
            script = self.script(account_id, name, namespace)
            secret = validate_secret(body, self.config)
            self._refuse_when_undeployed(script, bulk=False)
            self._check_bindings(script, {secret["name"]: secret})
            script.secrets[secret["name"]] = secret
            self._new_version(script)
            return public_view(secret)

    def delete_secret(self, account_id: str, name: str, namespace: str | None, secret_name: str) -> None:
        with self.lock:
            script = self.script(account_id, name, namespace)
            self._refuse_when_undeployed(script, bulk=False)
            if secret_name not in script.secrets:
                raise _binding_not_found(secret_name)
            del script.secrets[secret_name]
            self._new_version(script)

    def bulk_patch(self, account_id: str, name: str, namespace: str | None, body: Any) -> dict[str, Any]:
        """JSON merge patch of the secrets: all or nothing, one version for the whole call."""
        with self.lock:
            script = self.script(account_id, name, namespace)
            changes = self._bulk_changes(body)
            self._refuse_when_undeployed(script, bulk=True)
            upserts = {key: value for key, value in changes.items() if value is not None}
            self._check_bindings(script, upserts, deleted={key for key, v in changes.items() if v is None})
            for key, value in changes.items():
                if value is None:
                    script.secrets.pop(key, None)
                else:
                    script.secrets[key] = value
            self._new_version(script)
            return {key: public_view(secret) for key, secret in script.secrets.items()}

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
        total = len(names) + len(script.plain_text)
        if total > self.config.max_variables:
            raise ApiError(
                400,
                INVALID_BINDING,
                f"too many environment variables: {total} (secrets and plain text together), "
                f"the limit is {self.config.max_variables}",
            )

    def _refuse_when_undeployed(self, script: Script, *, bulk: bool) -> None:
        if not script.undeployed:
            return
        if bulk:
            raise ApiError(self.config.undeployed_status, SCRIPT_EDIT_NOT_DEPLOYED, SCRIPT_EDIT_NOT_DEPLOYED_MESSAGE)
        raise ApiError(self.config.undeployed_status, SECRET_EDIT_NOT_DEPLOYED, SECRET_EDIT_NOT_DEPLOYED_MESSAGE)

    def _new_version(self, script: Script) -> None:
        script.versions += 1
        script.modified_on = _timestamp(self.clock)

    def _account(self, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise ApiError(404, WORKER_NOT_FOUND, "This Worker does not exist on your account.")
        return account

    def _scripts(self, account_id: str, namespace: str | None) -> dict[str, Script]:
        account = self._account(account_id)
        if namespace is None:
            return account.scripts
        scripts = account.namespaces.get(namespace)
        if scripts is None:
            raise ApiError(404, NAMESPACE_NOT_FOUND, f"Dispatch namespace '{namespace}' not found.")
        return scripts


def _binding_not_found(secret_name: str) -> ApiError:
    return ApiError(
        404, BINDING_NOT_FOUND, f"Binding '{secret_name}' not found. Please use a different name and try again."
    )
