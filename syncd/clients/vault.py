"""The Vault KV reader (implements ``syncd.engine.ports.SecretSource``) and the hvac client factory.

``VaultReader`` only reads: the mount's KV version (cached per mount), KV v2 metadata (the cheap
change check), one exact KV v2 version, or KV v1 data. Values come back masked in ``SecretData``.
The token is the ``hvac.Client``'s, kept fresh by ``vault_auth.VaultTokenManager``.

The per-secret reads (metadata, data, KV v1) go through a lean keep-alive transport
(``vault_http``), not hvac: they are what an unchanged cycle consists of. They send what hvac sends
(``X-Vault-Token``, ``X-Vault-Namespace``, ``X-Vault-Request: true``, the path quoted like
``hvac.utils.format_url``) and read the answer as hvac's ``JSONAdapter`` does. hvac keeps the
mount lookup (once per mount), login and renewal.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import hvac.exceptions as hx
import requests

from syncd.clients.observe import NULL_OBSERVER, RequestObserver
from syncd.clients.vault_calls import VaultHttpError, expect_dict, reply_error, vault_call
from syncd.clients.vault_connection import VaultConnection, vault_http_for
from syncd.clients.vault_http import VaultTransport
from syncd.errors import VaultAuthError, VaultError, VaultPermissionDenied, VaultSecretDeleted, VaultSecretNotFound
from syncd.model import KvVersion, SecretData, SecretVersion, StaticRoleCreds, VaultSecretRef, VersionInfo


def build_hvac_client(
    address: str,
    *,
    namespace: str | None,
    timeout: float,
    verify: bool | str,
    client_cert: tuple[str, str] | None,
    pool_size: int,
    session: requests.Session | None = None,
) -> Any:
    """An ``hvac.Client`` without a token (the token manager sets it), built by
    ``VaultConnection`` (``vault_connection``): a pool sized for ``pool_size`` concurrent requests,
    no urllib3-level retries, the TLS options, the proxies resolved once, the redirect policy.
    ``verify`` is True, False or a CA bundle path; ``client_cert`` is ``(cert_file, key_file)``. A
    ``session`` passed in keeps its own adapters (and connection pools)."""
    connection = VaultConnection.resolve(
        address, namespace=namespace, timeout=timeout, verify=verify, client_cert=client_cert, pool_size=pool_size
    )
    return connection.hvac_client(session)


def parse_vault_time(value: object) -> datetime | None:
    """Vault's RFC 3339 timestamps (nanoseconds, ``Z``); ``""``/None/garbage -> None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, sep, rest = text.partition(".")
    if sep:  # Python wants at most 6 fractional digits
        digits = rest
        tz = ""
        for marker in ("+", "-"):
            if marker in rest:
                digits, _, tail = rest.partition(marker)
                tz = marker + tail
                break
        text = f"{main}.{digits[:6]}{tz}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _target(mount: str, kind: str, path: str) -> str:
    """The request target of ``/v1/{mount}/{kind}{path}``, quoted like ``hvac.utils.format_url``,
    with ``//`` collapsed and no trailing ``/``, as hvac's ``Adapter.request`` and ``urljoin`` do."""
    target = f"/v1/{quote(mount)}/{kind}{quote(path)}".rstrip("/")
    while "//" in target:
        target = target.replace("//", "/")
    return target


def _version_gone(path: str, meta: dict[str, Any]) -> VaultSecretDeleted:
    what = "destroyed" if meta.get("destroyed") else "deleted"
    return VaultSecretDeleted(f"Vault data_read {path}: version is {what}", path=path, status=404)


class VaultReader:
    def __init__(
        self,
        client: Any,
        *,
        observer: RequestObserver = NULL_OBSERVER,
        retry_attempts: int = 4,
        retry_deadline: float = 30.0,
        clock: Callable[[], float] = time.time,
        token_valid: Callable[[], bool] | None = None,
        on_token_refused: Callable[[], None] | None = None,
        http: VaultTransport | None = None,
    ) -> None:
        """``client`` is an ``hvac.Client``. ``token_valid`` (the token manager's ``is_valid``)
        turns a 403 into ``VaultAuthError`` when our own token is the reason; ``on_token_refused``
        (the manager's ``invalidate``) is told when Vault says the token itself is invalid, so the
        next cycle logs in again. ``http`` is the transport of the per-secret reads; by default one
        with the hvac client's URL, TLS options, timeout, proxies and pool size (``vault_http_for``)."""
        self._client = client
        self._http = http if http is not None else vault_http_for(client)
        namespace = getattr(getattr(client, "adapter", None), "namespace", None)
        self._headers = {"X-Vault-Request": "true"}
        if namespace:
            self._headers["X-Vault-Namespace"] = str(namespace)
        self._observer = observer
        self._attempts = retry_attempts
        self._deadline = retry_deadline
        self._clock = clock
        self._token_valid = token_valid
        self._on_token_refused = on_token_refused
        self._mounts: dict[str, KvVersion] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VaultReader({getattr(self._client, 'url', '?')!r})"

    def close(self) -> None:
        """Closes the per-secret reads' connections (the hvac client is its owner's to close)."""
        self._http.close()

    # -- SecretSource -----------------------------------------------------------------------

    def kv_version(self, mount: str) -> KvVersion:
        mount = mount.strip("/")
        with self._lock:
            cached = self._mounts.get(mount)
        if cached is not None:
            return cached
        path = f"sys/internal/ui/mounts/{mount}"
        response = self._call(lambda: self._client.adapter.get(f"/v1/{quote(path)}"), "mount_read", path)
        data = expect_dict(response, operation="mount_read", path=path).get("data") or {}
        mount_type = data.get("type")
        if mount_type not in ("kv", "generic", None):
            raise VaultError(f"Vault mount {mount!r} is of type {mount_type!r}, not a KV mount", path=mount)
        options = data.get("options") or {}
        version = KvVersion.V2 if str(options.get("version", "1")) == "2" else KvVersion.V1
        with self._lock:
            self._mounts[mount] = version
        return version

    def current_version(self, ref: VaultSecretRef, kv_version: KvVersion) -> VersionInfo:
        if kv_version is KvVersion.V1:
            return VersionInfo(ref=ref, kv_version=KvVersion.V1, version=None)
        path = f"{ref.mount}/metadata/{ref.path}"
        target = _target(ref.mount, "metadata/", ref.path)
        response = self._call(lambda: self._get(target), "metadata_read", path)
        data = expect_dict(response, operation="metadata_read", path=path).get("data") or {}
        current = data.get("current_version")
        if not isinstance(current, int) or current < 1:
            raise VaultSecretNotFound(f"Vault metadata_read {path}: no current version", path=path)
        meta = (data.get("versions") or {}).get(str(current)) or {}
        deletion = parse_vault_time(meta.get("deletion_time"))
        now = datetime.fromtimestamp(self._clock(), UTC)
        return VersionInfo(
            ref=ref,
            kv_version=KvVersion.V2,
            version=current,
            created_time=parse_vault_time(meta.get("created_time")),
            deleted=deletion is not None and deletion <= now,
            destroyed=bool(meta.get("destroyed", False)),
        )

    def read(self, ref: VaultSecretRef, kv_version: KvVersion, version: int | None) -> SecretVersion:
        if kv_version is KvVersion.V1:
            path = f"{ref.mount}/{ref.path}"
            target = _target(ref.mount, "", ref.path)
            response = self._call(lambda: self._get(target), "data_read", path)
            data = expect_dict(response, operation="data_read", path=path).get("data")
            if not isinstance(data, dict):
                raise VaultSecretNotFound(f"Vault data_read {path}: no data", path=path)
            return SecretVersion(ref, KvVersion.V1, None, None, SecretData(data))

        query = f"?version={version}" if version is not None else ""
        path = f"{ref.mount}/data/{ref.path}{query}"
        target = _target(ref.mount, "data/", ref.path) + query
        response = self._call(
            lambda: self._get(target),
            "data_read",
            path,
            translate=lambda exc: self._deleted_version(exc, path),
        )
        body = expect_dict(response, operation="data_read", path=path).get("data") or {}
        meta = body.get("metadata") or {}
        values = body.get("data")
        if values is None or meta.get("destroyed"):
            raise _version_gone(path, meta)
        if not isinstance(values, dict):
            raise VaultError(f"Vault data_read {path}: data is not an object", path=path)
        read_version = meta.get("version")
        return SecretVersion(
            ref=ref,
            kv_version=KvVersion.V2,
            version=read_version if isinstance(read_version, int) else version,
            created_time=parse_vault_time(meta.get("created_time")),
            data=SecretData(values),
        )

    def static_creds(self, mount: str, role: str) -> StaticRoleCreds:
        """``GET {mount}/static-creds/{role}`` through the lean read path (a role is checked on
        every cycle that looks at it). An unknown role is 400 ``unknown role: NAME`` in Vault
        (``path_creds_create.go``, ``pathStaticCredsRead``): reported as ``VaultSecretNotFound``."""
        mount = mount.strip("/")
        path = f"{mount}/static-creds/{role}"
        target = _target(mount, "static-creds/", role)
        response = self._call(lambda: self._get(target), "static_creds_read", path, translate=_unknown_role(path))
        data = expect_dict(response, operation="static_creds_read", path=path).get("data")
        return static_creds_of(VaultSecretRef(mount, f"static-creds/{role}"), data, path)

    # -- internals --------------------------------------------------------------------------

    def _get(self, target: str) -> Any:
        """One GET of the lean path: the JSON object of a 200, the raw reply of another 2xx/3xx
        (``expect_dict`` refuses it, as it refuses hvac's ``Response``), ``VaultHttpError`` else."""
        headers = self._headers.copy()
        token = self._client.token
        if token:
            headers["X-Vault-Token"] = token
        reply = self._http.get(target, headers)
        if reply.status == 200:
            try:
                return json.loads(reply.body)
            except ValueError:
                return reply
        if reply.status >= 400:
            raise reply_error(reply)
        return reply

    @staticmethod
    def _deleted_version(exc: Exception, path: str) -> VaultError | None:
        """A 404 whose body has the version's metadata: the version exists but is deleted/destroyed."""
        if isinstance(exc, VaultHttpError):
            if exc.status_code != 404 or not isinstance(exc.json, dict):
                return None
        elif not isinstance(exc, hx.InvalidPath) or not isinstance(exc.json, dict):
            return None
        meta = (exc.json.get("data") or {}).get("metadata")
        if not isinstance(meta, dict):
            return None
        return _version_gone(path, meta)

    def _call(
        self,
        fn: Callable[[], Any],
        operation: str,
        path: str,
        *,
        translate: Callable[[Exception], VaultError | None] | None = None,
    ) -> Any:
        try:
            return vault_call(
                fn,
                operation=operation,
                path=path,
                observer=self._observer,
                attempts=self._attempts,
                deadline=self._deadline,
                translate=translate,
            )
        except VaultPermissionDenied as exc:
            refused = "invalid token" in str(exc)  # Vault: "2 errors occurred: permission denied, invalid token"
            if refused and self._on_token_refused is not None:
                self._on_token_refused()
            if refused or (self._token_valid is not None and not self._token_valid()):
                raise VaultAuthError(
                    f"Vault {operation} {path}: the token is missing or expired", path=path, status=exc.status
                ) from None
            raise


def _unknown_role(path: str) -> Callable[[Exception], VaultError | None]:
    def translate(exc: Exception) -> VaultError | None:
        reason = exc.reason if isinstance(exc, VaultHttpError) else str(exc)
        status = getattr(exc, "status_code", None)
        if status == 400 and "unknown role" in reason:
            return VaultSecretNotFound(f"Vault static_creds_read {path}: no such static role", path=path, status=400)
        return None

    return translate


def _seconds(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def static_creds_of(ref: VaultSecretRef, data: object, path: str) -> StaticRoleCreds:
    """A ``static-creds`` answer's ``data`` (``username``, ``password``, ``last_vault_rotation``,
    ``rotation_period``, ``ttl``; Vault API docs, "Get static credentials") as ``StaticRoleCreds``."""
    if not isinstance(data, dict) or not isinstance(data.get("password"), str):
        raise VaultError(f"Vault static_creds_read {path}: the answer holds no password", path=path)
    rotated_text = data.get("last_vault_rotation")
    rotated = parse_vault_time(rotated_text)
    period = _seconds(data.get("rotation_period"))
    return StaticRoleCreds(
        ref=ref,
        data=SecretData(data),
        last_vault_rotation=rotated_text if isinstance(rotated_text, str) and rotated_text else None,
        ttl=_seconds(data.get("ttl")),
        rotation_period=period,
        rotated_at=rotated,
        next_rotation=None if rotated is None or period is None else rotated.timestamp() + period,
    )


__all__ = ["VaultReader", "build_hvac_client", "parse_vault_time", "static_creds_of"]
