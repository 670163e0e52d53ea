"""The Vault KV reader (implements ``syncd.engine.ports.SecretSource``) and the hvac client factory.

``VaultReader`` only reads: the mount's KV version (cached per mount), KV v2 metadata (the cheap
change check), one exact KV v2 version, or KV v1 data. Values come back masked in ``SecretData``.
The token is the ``hvac.Client``'s, kept fresh by ``vault_auth.VaultTokenManager``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import hvac
import hvac.exceptions as hx
import requests
from requests.adapters import HTTPAdapter

from syncd.clients.observe import NULL_OBSERVER, RequestObserver
from syncd.clients.vault_calls import StatusAwareAdapter, expect_dict, vault_call
from syncd.errors import VaultAuthError, VaultError, VaultPermissionDenied, VaultSecretDeleted, VaultSecretNotFound
from syncd.model import KvVersion, SecretData, SecretVersion, VaultSecretRef, VersionInfo


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
    """An ``hvac.Client`` without a token (the token manager sets it), with a connection pool
    sized for ``pool_size`` concurrent requests and no urllib3-level retries (ours are typed).

    ``verify`` is True, False or a CA bundle path; ``client_cert`` is ``(cert_file, key_file)``.
    hvac's token sources (VAULT_TOKEN, ~/.vault-token) are deliberately not consulted. Proxy
    variables (HTTPS_PROXY, NO_PROXY) still apply, but are resolved once here: with ``trust_env``
    requests rescans the whole environment on every request, a third of a version check's CPU
    (bench/README.md). ``trust_env = False`` also ignores ~/.netrc and REQUESTS_CA_BUNDLE; TLS
    verification is set explicitly. A ``session`` passed in keeps its own connection pool.
    """
    if session is None:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
    session.verify = verify
    session.cert = client_cert
    session.proxies = requests.utils.get_environ_proxies(address)
    session.trust_env = False
    return hvac.Client(
        url=address,
        token="",
        namespace=namespace or None,
        timeout=timeout,
        verify=verify,
        cert=client_cert,
        session=session,
        adapter=StatusAwareAdapter,
    )


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
    ) -> None:
        """``client`` is an ``hvac.Client``. ``token_valid`` (the token manager's ``is_valid``)
        turns a 403 into ``VaultAuthError`` when our own token is the reason; ``on_token_refused``
        (the manager's ``invalidate``) is told when Vault says the token itself is invalid, so the
        next cycle logs in again."""
        self._client = client
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
        response = self._call(
            lambda: self._client.secrets.kv.v2.read_secret_metadata(path=ref.path, mount_point=ref.mount),
            "metadata_read",
            path,
        )
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
            response = self._call(
                lambda: self._client.secrets.kv.v1.read_secret(path=ref.path, mount_point=ref.mount),
                "data_read",
                path,
            )
            data = expect_dict(response, operation="data_read", path=path).get("data")
            if not isinstance(data, dict):
                raise VaultSecretNotFound(f"Vault data_read {path}: no data", path=path)
            return SecretVersion(ref, KvVersion.V1, None, None, SecretData(data))

        path = f"{ref.mount}/data/{ref.path}" + (f"?version={version}" if version is not None else "")
        response = self._call(
            lambda: self._client.secrets.kv.v2.read_secret_version(
                path=ref.path, version=version, mount_point=ref.mount, raise_on_deleted_version=False
            ),
            "data_read",
            path,
            translate=lambda exc: self._deleted_version(exc, path),
        )
        body = expect_dict(response, operation="data_read", path=path).get("data") or {}
        meta = body.get("metadata") or {}
        values = body.get("data")
        if values is None or meta.get("destroyed"):
            # hvac hands back a soft-deleted version's 404 body instead of raising.
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

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _deleted_version(exc: Exception, path: str) -> VaultError | None:
        """A 404 whose body has the version's metadata: the version exists but is deleted/destroyed."""
        if not isinstance(exc, hx.InvalidPath) or not isinstance(exc.json, dict):
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


__all__ = ["VaultReader", "build_hvac_client", "parse_vault_time"]
