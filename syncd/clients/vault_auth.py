"""The lifetime of syncd's Vault token: log in, renew, log in again.

Login strategies (credentials are callables, re-invoked on every login, so a rotated file or a
refreshed Kubernetes service-account token takes effect without a restart):

- ``TokenLogin``: a given token; ``lookup-self`` learns its TTL and whether it is renewable. It
  remembers the token it logged in with, so a rotated token file is noticed (``credential_changed``)
  without waiting for the old token to expire: ``ensure_token()`` (before every cycle) and
  ``maintain()`` (every ``idle_interval``, 60 s, for a non-expiring token; at renewal time for
  an expiring one) log in again with the new token;
- ``AppRoleLogin``: ``role_id`` + ``secret_id``;
- ``KubernetesLogin``: a role and the pod's service-account JWT;
- ``JwtLogin``: a role and a JWT.

``VaultTokenManager.maintain()`` is called by a scheduler and returns when it wants to run again.
It renews at about 2/3 of the lease minus a random 10-20 % grace (as Vault's LifetimeWatcher does),
and logs in again when a renewal is refused, the token is not renewable, or a renewal grants less
than was asked (the max TTL is near). Errors back off exponentially (with jitter), never past the
token's expiry. ``invalidate()`` is for callers that saw Vault refuse the token (revoked, or
rotated away): the next ``ensure_token()``/``maintain()`` logs in again. The token never appears
in logs, reprs or exceptions.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import structlog

from syncd.clients.observe import NULL_OBSERVER, RequestObserver
from syncd.clients.vault_calls import expect_dict, vault_call
from syncd.errors import SyncdError, VaultAuthError, VaultError
from syncd.model import SecretValue
from syncd.redaction import remember_credential
from syncd.retrying import Backoff

log = structlog.get_logger("syncd.clients.vault_auth")

Credential = Callable[[], SecretValue]


@dataclass(frozen=True, repr=False)
class LoginResult:
    token: SecretValue
    ttl: float  # seconds of lease left; 0 means the token does not expire
    renewable: bool
    increment: float  # what to ask for on renewal (the lease the token was created with)

    def __repr__(self) -> str:
        return f"LoginResult(token=***, ttl={self.ttl}, renewable={self.renewable})"


class LoginStrategy(Protocol):
    method: str

    def login(self, client: Any, call: VaultCall) -> LoginResult:
        """Obtain a token (without installing it in ``client``); requests go through ``call``."""
        ...


@runtime_checkable
class RotatingCredentialLogin(Protocol):
    """A login whose credential is the token itself: a changed credential means a new token."""

    def credential_changed(self) -> bool:
        """True when the credential differs from the one of the last successful login."""
        ...


class VaultCall(Protocol):
    def __call__(self, fn: Callable[[], Any], operation: str, path: str) -> Any: ...


def _from_auth(response: Any, path: str) -> LoginResult:
    auth = expect_dict(response, operation="login", path=path).get("auth")
    if not isinstance(auth, dict) or not auth.get("client_token"):
        raise VaultAuthError(f"Vault login {path}: the response has no token", path=path)
    lease = float(auth.get("lease_duration") or 0)
    token = str(auth["client_token"])
    remember_credential(token)  # masked wherever syncd.redaction scrubs text
    return LoginResult(SecretValue(token), lease, bool(auth.get("renewable")), lease)


class TokenLogin:
    """A token given from outside (a file); ``lookup-self`` tells its TTL and renewability."""

    method = "token"

    def __init__(self, token: Credential) -> None:
        self._token = token
        self._logged_in_with: SecretValue | None = None

    def __repr__(self) -> str:
        return "TokenLogin(***)"

    def credential_changed(self) -> bool:
        """The credential now differs from the token of the last successful login. A credential
        that cannot be read now counts as unchanged: the installed token is kept, and the next
        login reports the unreadable file."""
        if self._logged_in_with is None:
            return False
        try:
            current = self._token()
        except SyncdError:
            return False
        return current != self._logged_in_with

    def login(self, client: Any, call: VaultCall) -> LoginResult:
        token = self._token()
        previous = client.token
        client.token = token.reveal()
        try:
            response = call(client.auth.token.lookup_self, "lookup_self", "auth/token/lookup-self")
        finally:
            client.token = previous
        data = expect_dict(response, operation="lookup_self", path="auth/token/lookup-self").get("data") or {}
        ttl = float(data.get("ttl") or 0)
        increment = float(data.get("creation_ttl") or ttl)
        # Only a token Vault accepted is remembered: a refused new token is tried again next time.
        self._logged_in_with = token
        return LoginResult(token, ttl, bool(data.get("renewable")), increment)


class AppRoleLogin:
    method = "approle"

    def __init__(self, role_id: Credential, secret_id: Credential | None, *, mount_point: str = "approle") -> None:
        self._role_id = role_id
        self._secret_id = secret_id
        self.mount_point = mount_point

    def __repr__(self) -> str:
        return f"AppRoleLogin(mount_point={self.mount_point!r})"

    def login(self, client: Any, call: VaultCall) -> LoginResult:
        path = f"auth/{self.mount_point}/login"
        role_id = self._role_id().reveal()
        secret_id = self._secret_id().reveal() if self._secret_id is not None else None
        response = call(
            lambda: client.auth.approle.login(
                role_id=role_id, secret_id=secret_id, use_token=False, mount_point=self.mount_point
            ),
            "login",
            path,
        )
        return _from_auth(response, path)


class _RoleJwtLogin:
    """A role plus a JWT read afresh at every login (Kubernetes service-account token, OIDC JWT)."""

    method = ""

    def __init__(self, role: str, jwt: Credential, *, mount_point: str) -> None:
        self.role = role
        self._jwt = jwt
        self.mount_point = mount_point

    def __repr__(self) -> str:
        return f"{type(self).__name__}(role={self.role!r}, mount_point={self.mount_point!r})"

    def login(self, client: Any, call: VaultCall) -> LoginResult:
        path = f"auth/{self.mount_point}/login"
        jwt = self._jwt().reveal()
        return _from_auth(call(lambda: self._send(client, jwt), "login", path), path)

    def _send(self, client: Any, jwt: str) -> Any:
        raise NotImplementedError


class KubernetesLogin(_RoleJwtLogin):
    method = "kubernetes"

    def __init__(self, role: str, jwt: Credential, *, mount_point: str = "kubernetes") -> None:
        super().__init__(role, jwt, mount_point=mount_point)

    def _send(self, client: Any, jwt: str) -> Any:
        return client.auth.kubernetes.login(self.role, jwt, use_token=False, mount_point=self.mount_point)


class JwtLogin(_RoleJwtLogin):
    method = "jwt"

    def __init__(self, role: str, jwt: Credential, *, mount_point: str = "jwt") -> None:
        super().__init__(role, jwt, mount_point=mount_point)

    def _send(self, client: Any, jwt: str) -> Any:
        return client.auth.jwt.jwt_login(self.role, jwt, use_token=False, path=self.mount_point)


class VaultTokenManager:
    EXPIRY_MARGIN = 5.0  # a token this close to expiry counts as expired for ensure_token

    def __init__(
        self,
        client: Any,
        login: LoginStrategy,
        clock: Callable[[], float] = time.time,
        observer: RequestObserver = NULL_OBSERVER,
        *,
        rng: Callable[[], float] = random.random,
        min_backoff: float = 1.0,
        max_backoff: float = 300.0,
        idle_interval: float = 60.0,
        retry_attempts: int = 3,
        retry_deadline: float = 15.0,
    ) -> None:
        self._client = client
        self._login = login
        self._clock = clock
        self._observer = observer
        self._rng = rng
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._idle_interval = idle_interval
        self._attempts = retry_attempts
        self._deadline = retry_deadline
        self._lock = threading.RLock()
        self._has_token = False
        self._expires_at: float | None = None
        self._renew_at: float | None = None
        self._renewable = False
        self._increment = 0.0
        self._failures = 0
        self.last_error: str | None = None  # reason of the last failed maintenance (for /status)

    def __repr__(self) -> str:
        return f"VaultTokenManager(login={self._login.method}, valid={self.is_valid()}, expires_at={self._expires_at})"

    # -- public API -------------------------------------------------------------------------

    @property
    def expires_at(self) -> float | None:
        """When the token expires (the clock's time); None without a token or for a non-expiring one."""
        return self._expires_at if self._has_token else None

    def is_valid(self) -> bool:
        with self._lock:
            return self._valid_locked(self._clock(), 0.0)

    def ensure_token(self) -> None:
        """Log in unless a token with some life left is installed and its credential (a token
        file) is unchanged. Raises VaultAuthError/VaultUnavailable; a refused rotated token leaves
        the previous token installed."""
        with self._lock:
            if not self._valid_locked(self._clock(), self.EXPIRY_MARGIN) or self._rotated_locked():
                self._login_locked()

    def current_token(self) -> SecretValue:
        """The token the Vault client uses now, logging in first when needed (for the event WebSocket,
        which authenticates its upgrade request with it)."""
        self.ensure_token()
        with self._lock:
            return SecretValue(str(self._client.token or ""))

    def invalidate(self) -> None:
        """Vault refused the installed token: count it as gone, so the next ``ensure_token()`` or
        ``maintain()`` logs in again (with the credential as it is then)."""
        with self._lock:
            if self._has_token:
                log.info("vault_token_invalidated", method=self._login.method)
            self._has_token = False

    def maintain(self) -> float:
        """Renew or log in as due; returns the seconds until it wants to be called again. Never raises
        a ``VaultError``: failures are logged and backed off."""
        with self._lock:
            now = self._clock()
            try:
                if not self._valid_locked(now, self.EXPIRY_MARGIN) or self._rotated_locked():
                    self._login_locked()
                elif self._renew_at is not None and now >= self._renew_at:
                    if self._renewable:
                        self._renew_locked()
                    else:
                        log.info("vault_token_not_renewable", method=self._login.method)
                        self._login_locked()
            except VaultError as exc:
                return self._backoff_locked(exc)
            self._failures = 0
            self.last_error = None
            if self._renew_at is None:  # a token that never expires
                return self._idle_interval
            return max(0.0, self._renew_at - self._clock())

    # -- internals --------------------------------------------------------------------------

    def _rotated_locked(self) -> bool:
        if not (self._has_token and isinstance(self._login, RotatingCredentialLogin)):
            return False
        if not self._login.credential_changed():
            return False
        log.info("vault_token_credential_changed", method=self._login.method)
        return True

    def _valid_locked(self, now: float, margin: float) -> bool:
        if not self._has_token:
            return False
        return self._expires_at is None or now < self._expires_at - margin

    def _call(self, fn: Callable[[], Any], operation: str, path: str) -> Any:
        return vault_call(
            fn,
            operation=operation,
            path=path,
            observer=self._observer,
            attempts=self._attempts,
            deadline=self._deadline,
            auth=True,
        )

    def _login_locked(self) -> None:
        result = self._login.login(self._client, self._call)
        self._client.token = result.token.reveal()
        self._install_locked(result.ttl, result.renewable, result.increment)
        log.info("vault_login", method=self._login.method, ttl=result.ttl, renewable=result.renewable)

    def _renew_locked(self) -> None:
        asked = self._increment
        path = "auth/token/renew-self"
        try:
            response = self._call(
                lambda: self._client.auth.token.renew_self(increment=int(asked) if asked else None),
                "renew",
                path,
            )
        except VaultAuthError as exc:
            log.info("vault_token_renewal_refused", reason=exc.reason, status=exc.status)
            self._login_locked()
            return
        auth = expect_dict(response, operation="renew", path=path).get("auth") or {}
        granted = float(auth.get("lease_duration") or 0)
        renewable = bool(auth.get("renewable"))
        self._install_locked(granted, renewable, asked)
        if not renewable or granted + 1 < asked:
            # The max TTL is near: keep the renewed token until the new one is in place.
            log.info("vault_token_renewal_short", granted=granted, asked=asked)
            self._login_locked()
        else:
            log.debug("vault_token_renewed", ttl=granted)

    def _install_locked(self, ttl: float, renewable: bool, increment: float) -> None:
        now = self._clock()
        self._has_token = True
        self._renewable = renewable
        self._increment = increment
        if ttl <= 0:
            self._expires_at = None
            self._renew_at = None
            return
        grace = 0.1 + 0.1 * self._rng()
        self._expires_at = now + ttl
        self._renew_at = now + ttl * (2.0 / 3.0) * (1.0 - grace)

    def _backoff_locked(self, exc: VaultError) -> float:
        self._failures += 1
        self.last_error = exc.reason
        # syncd.retrying's rule, with up to min_backoff of jitter
        rule = Backoff(initial=self._min_backoff, maximum=self._max_backoff, jitter=self._min_backoff)
        delay = rule.delay(self._failures, self._rng)
        if self._has_token and self._expires_at is not None:
            left = self._expires_at - self._clock()
            if left > 0:  # try again well before the token runs out
                delay = min(delay, max(left / 3, min(1.0, left)))
        log.warning(
            "vault_token_maintenance_failed",
            reason=exc.reason,
            status=exc.status,
            failures=self._failures,
            retry_in=round(delay, 3),
        )
        return delay
