"""Open the state backend that ``[state] backend`` names: the one call the app makes.

``open_configured_state(settings, exclusive=..., fingerprint_key=...)`` returns a ``StateBackend``:

- ``sqlite``: ``StateStore.open(sync.state_path, exclusive=...)``, exactly as before;
- ``kubernetes``: ``KubernetesStateStore`` over the Secrets ``[state.kubernetes]`` names, through a
  ``SecretsClient`` on the API ``[leader_election]`` connects to (in-cluster unless its ``api_url``,
  ``namespace``, ``token_file``, ``ca_file`` say otherwise), keyed by the external
  ``fingerprint_key`` (required: the config refuses this backend without ``sync.fingerprint_key``).
  ``secrets_api`` replaces the HTTP client (tests).

``reload_on_takeover(state)`` is what leader election calls when this replica takes the Lease.
"""

from __future__ import annotations

from syncd.clients.k8s_secrets import KubernetesEndpoint, SecretsApiError, SecretsClient
from syncd.config import Settings
from syncd.engine.state.backend import StateBackend
from syncd.engine.state.kubernetes import KubernetesStateStore
from syncd.engine.state.secret_objects import SecretsApi
from syncd.engine.state.store import StateStore
from syncd.errors import StateError


def open_configured_state(
    settings: Settings,
    *,
    exclusive: bool = True,
    fingerprint_key: bytes | None = None,
    secrets_api: SecretsApi | None = None,
) -> StateBackend:
    """The configured store, as its writer (``exclusive``) or as a reader; ``StateError`` if it cannot."""
    if settings.state.backend == "sqlite":
        return StateStore.open(settings.sync.state_path, exclusive=exclusive)
    if fingerprint_key is None:
        raise StateError('state.backend = "kubernetes" needs sync.fingerprint_key (the Secrets never hold a key)')
    kube = settings.state.kubernetes
    connection = settings.leader_election
    client: SecretsClient | None = None
    if secrets_api is None:
        try:
            endpoint = KubernetesEndpoint.in_cluster(
                token_file=connection.token_file,
                ca_file=connection.ca_file,
                api_url=connection.api_url,
                namespace=connection.namespace,
                timeout_seconds=connection.request_timeout_seconds,
            )
        except SecretsApiError as exc:
            raise StateError(f"cannot reach the Kubernetes API for the state: {exc}") from None
        secrets_api = client = SecretsClient(endpoint)
    try:
        return KubernetesStateStore.open(
            secrets_api,
            kube.secret_names(),
            hmac_key=fingerprint_key,
            exclusive=exclusive,
            max_secret_bytes=kube.max_secret_bytes,
            on_close=None if client is None else client.close,
        )
    except BaseException:
        if client is not None:
            client.close()
        raise


def reload_on_takeover(state: StateBackend) -> None:
    """Call when this process becomes the leader, before its first cycle: a ``kubernetes`` store
    reads every Secret again (what the previous leader wrote since this one opened it, and it
    forgets a ``StateConflict`` fence). The SQLite store has one writer by its lock: nothing to do."""
    if isinstance(state, KubernetesStateStore):
        state.reload()
