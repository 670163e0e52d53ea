"""The error tree of syncd. Every exception syncd raises on purpose derives from ``SyncdError``.

    SyncdError                       exit_code 1 unless stated
    ├── ConfigError                  exit_code 2; .problems: file, mapping, key, message
    ├── UsageError                   exit_code 2: the command line names what the config lacks
    ├── InternalError                an unexpected exception, reduced to its type (its text could hold a value)
    ├── CycleTimeout                 the cycle's deadline passed before this work started
    ├── LeadershipLost               this replica cannot prove its Lease outlasts a write: not started
    ├── ScriptBackedOff              the target script keeps failing (timeouts, 5xx): no write until .retry_at
    ├── SecretsStoreNotOwned         a store secret of that name exists and is not syncd's (no adopt = true)
    ├── SecretsStoreQuotaExceeded    the account's store secrets quota has no room for the secrets to create
    ├── StateError                   the state store cannot be opened or is of an unknown schema
    │   ├── StateLocked              exit_code 2: another syncd process is the state file's writer
    │   └── StateConflict            another writer changed the state (a 409 on a state Secret): nothing
    │                                was overwritten and the store writes no more; the leader steps down
    ├── KubernetesApiError           a call on the Lease or a state Secret failed: .status (None: no
    │   │                            answer), .api_reason (the Status reason; names objects, never data)
    │   ├── KubernetesConflict       409: someone else wrote the object first (a stale resourceVersion)
    │   │                            or created it first (AlreadyExists)
    │   └── KubernetesNotInCluster   exit_code 2: outside a pod, the API address or namespace is not
    │                                configured; the message names the [leader_election] key to set
    ├── ValueRejected                a Vault value cannot become a Cloudflare binding (too large,
    │                                undecodable key material, missing key); fails that mapping only
    ├── VaultError                   .path (the Vault path, never a value)
    │   ├── VaultAuthError           login, renewal or token refused
    │   ├── VaultPermissionDenied    403 on a secret path
    │   ├── VaultSecretNotFound      404: no secret at the path
    │   ├── VaultSecretDeleted       the current version is soft-deleted or destroyed
    │   └── VaultUnavailable         sealed, 5xx, 429, timeouts, connection errors (retryable)
    └── CloudflareError              .status, .code, .api_message (Cloudflare's own code and text)
        ├── CloudflareAuthError      9106, 9109, 10000, 1000, 6003 (401/403): never retried
        ├── CloudflareNotFound       10007 script missing, 10056 binding missing
        │   └── SecretsStoreNotFound no such Secrets Store (by name or id) or store secret
        ├── CloudflareNotDeployed    10214/10215: latest Worker version not deployed
        ├── CloudflareValidationError 10053, 10054 and other 4xx: never retried
        ├── CloudflareRateLimited    429; .retry_after in seconds when given (retryable)
        ├── CloudflareServerError    5xx (retryable)
        └── CloudflareTransportError timeouts and connection errors (retryable)

Messages carry paths, names, codes and Cloudflare's message text, never a secret value. Callers
that build messages from untrusted text must not interpolate request bodies.
"""

from __future__ import annotations

from dataclasses import dataclass


class SyncdError(Exception):
    """Base of every deliberate syncd error. ``exit_code`` is what the command line returns."""

    exit_code = 1
    retryable = False

    @property
    def reason(self) -> str:
        """A short machine-friendly reason for metrics labels and /status."""
        return type(self).__name__


ECHO_LIMIT = 80  # the longest user-given name echoed whole in a message


def shorten(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis: names from a file are echoed, not dumped."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    mapping: str | None  # the mapping's name (or "mapping[3]" when it has none); None for global keys
    key: str  # dotted key inside the mapping (or the file, for global keys)
    message: str

    def __str__(self) -> str:
        where = f"mapping {shorten(self.mapping)!r}, " if self.mapping else ""
        return f"{self.file}: {where}key {shorten(self.key, 2 * ECHO_LIMIT)!r}: {self.message}"


class UsageError(SyncdError):
    """The command line asks for something the configuration does not have (``--mapping typo``)."""

    exit_code = 2


class LeadershipLost(SyncdError):
    """With leader election, a Cloudflare write is started only while this replica's Lease provably
    outlasts the write's deadline; otherwise nothing is sent and this is raised."""


class ConfigError(SyncdError):
    exit_code = 2

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


class CycleTimeout(SyncdError):
    """The cycle's deadline passed before this work started."""


class ScriptBackedOff(SyncdError):
    """Writes to this script are suspended until ``retry_at`` (epoch seconds) after repeated
    timeouts or 5xx answers; the message names the script and the retry time."""

    def __init__(self, message: str, *, retry_at: float) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class SecretsStoreNotOwned(SyncdError):
    """A store secret that a mapping names exists and carries no mark of syncd's: syncd never changes
    or deletes a store secret it does not own unless the mapping's target says ``adopt = true``.
    ``nothing_sent``: raised before any request of a write (so that write's intents can go)."""

    def __init__(self, message: str, *, nothing_sent: bool = False) -> None:
        self.nothing_sent = nothing_sent
        super().__init__(message)


class SecretsStoreQuotaExceeded(SyncdError):
    """Creating a cycle's new store secrets would pass the account's quota (``GET /quota``): nothing
    was created; the message names the usage, the quota and how many were to be created."""

    def __init__(self, message: str, *, usage: int, quota: int, creating: int) -> None:
        self.usage = usage
        self.quota = quota
        self.creating = creating
        super().__init__(message)


class InternalError(SyncdError):
    """An unexpected exception (a bug, not a refusal), reduced to its type: its text could hold a value."""

    @classmethod
    def of(cls, exc: BaseException) -> InternalError:
        return cls(f"internal error ({type(exc).__name__})")


class StateError(SyncdError):
    pass


class StateLocked(StateError):
    """Another process (or another open store in this one) is the state file's writer: nothing was done."""

    exit_code = 2  # like a usage error: the run was refused before it started, nothing failed


class StateConflict(StateError):
    """Someone else wrote the state since this process read it: never overwritten, no more writes."""


class KubernetesApiError(SyncdError):
    """A Kubernetes API call failed. ``status`` is None when no answer came."""

    def __init__(self, message: str, *, status: int | None = None, api_reason: str | None = None) -> None:
        self.status = status
        self.api_reason = api_reason
        super().__init__(message)

    @property
    def reason(self) -> str:
        return f"{type(self).__name__}({self.status})" if self.status is not None else type(self).__name__


class KubernetesConflict(KubernetesApiError):
    """409: a write's ``resourceVersion`` precondition failed, or a create found the name taken."""


class KubernetesNotInCluster(KubernetesApiError):
    """Outside a pod without the address or namespace configured: the message says what to set."""

    exit_code = 2


class ValueRejected(SyncdError):
    """A Vault value that cannot be sent; the message says why without quoting the value."""

    def __init__(self, binding: str, why: str) -> None:
        self.binding = binding
        self.why = why
        super().__init__(f"binding {binding!r}: {why}")


class VaultError(SyncdError):
    def __init__(self, message: str, *, path: str | None = None, status: int | None = None) -> None:
        self.path = path
        self.status = status
        super().__init__(message)


class VaultAuthError(VaultError):
    pass


class VaultPermissionDenied(VaultError):
    pass


class VaultSecretNotFound(VaultError):
    pass


class VaultSecretDeleted(VaultError):
    pass


class VaultUnavailable(VaultError):
    retryable = True


class CloudflareError(SyncdError):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        api_message: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.api_message = api_message
        super().__init__(message)

    @property
    def reason(self) -> str:
        return f"{type(self).__name__}({self.code})" if self.code is not None else type(self).__name__


class CloudflareAuthError(CloudflareError):
    pass


class CloudflareNotFound(CloudflareError):
    pass


class SecretsStoreNotFound(CloudflareNotFound):
    """A Secrets Store (looked up by name or id) or a store secret that does not exist
    (``store_not_found`` / ``secret_not_found``, or a store name no listed store has)."""


class CloudflareNotDeployed(CloudflareError):
    """10215 (secret PUT/DELETE) or 10214 (secrets-bulk, settings): the latest version is not fully deployed."""


class CloudflareNoVersions(CloudflareError):
    """10222: the script has no versions to stage secrets into (``versions/latest``)."""


class CloudflareValidationError(CloudflareError):
    pass


class CloudflareRateLimited(CloudflareError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class CloudflareServerError(CloudflareError):
    retryable = True


class CloudflareTransportError(CloudflareError):
    retryable = True
