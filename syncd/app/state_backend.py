"""Open the state backend that ``[state] backend`` names: wiring, so the engine only receives it.

``open_configured_state(settings, exclusive=..., fingerprint_key=...)`` returns a ``StateBackend``;
both ``syncd run`` (``syncd.app.service.wiring.open_state``) and the one-shot commands use it:

- ``sqlite``: ``StateStore.open(sync.state_path, exclusive=...)``;
- ``kubernetes``: ``KubernetesStateStore`` over the Secrets ``[state.kubernetes]`` names, through a
  ``SecretsClient`` (``syncd.clients.kubernetes``) on the API ``[leader_election]`` connects to
  (in-cluster unless its ``api_url``, ``namespace``, ``token_file``, ``ca_file`` say otherwise: the
  Lease's endpoint rule, ``kubernetes_endpoint``), keyed by the external ``fingerprint_key``
  (required: the config refuses this backend without ``sync.fingerprint_key``). ``secrets_api``
  replaces the HTTP client (tests). Outside a pod without ``api_url``/``namespace`` it raises
  ``KubernetesNotInCluster`` (exit code 2), naming the key to set.
"""

from __future__ import annotations

from syncd.app.leadership.factory import kubernetes_endpoint
from syncd.clients.kubernetes import SecretsClient
from syncd.config import Settings
from syncd.engine.state.backend import StateBackend
from syncd.engine.state.kubernetes import KubernetesStateStore
from syncd.engine.state.secret_objects import SecretsApi
from syncd.engine.state.store import StateStore
from syncd.errors import KubernetesApiError, KubernetesNotInCluster, StateError


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
    client: SecretsClient | None = None
    if secrets_api is None:
        try:
            endpoint = kubernetes_endpoint(settings.leader_election)
        except KubernetesNotInCluster:
            raise
        except KubernetesApiError as exc:
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
