"""``[state]``: where syncd keeps its records (versions, keyed fingerprints, ownership, statuses).

``backend = "sqlite"`` (the default): the embedded file at ``sync.state_path``, one process.
``backend = "kubernetes"``: the same records in ``[state.kubernetes] secret_count`` Secrets named
``<secret_name_prefix>-0`` .. ``-<secret_count - 1>`` in syncd's namespace, which the manifests
create (syncd has no ``create`` on Secrets); only the Lease holder writes them. The replicas must
share the fingerprint key, so this backend requires ``sync.fingerprint_key``. The API connection
(``api_url``, ``namespace``, ``token_file``, ``ca_file``, ``request_timeout_seconds``) is the one
``[leader_election]`` names: one Kubernetes API, configured once.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from syncd.config.strict import StrictModel

# Kubernetes refuses a Secret whose data exceeds 1 MiB (MaxSecretSize, k8s.io/kubernetes
# pkg/apis/core/types.go); the whole object travels as JSON with its data base64-encoded (4/3).
KUBERNETES_SECRET_LIMIT = 1024 * 1024
DEFAULT_MAX_SECRET_BYTES = 512 * 1024


class KubernetesStateSettings(StrictModel):
    # DNS-1123 labels; the index is appended ("-0", "-1", ...).
    secret_name_prefix: str = Field(default="syncd-state", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=200)
    secret_count: int = Field(default=4, ge=1, le=256)
    # Compressed record bytes per Secret; headroom under the 1 MiB limit for growth between cycles.
    max_secret_bytes: int = Field(default=DEFAULT_MAX_SECRET_BYTES, ge=4096, le=KUBERNETES_SECRET_LIMIT * 3 // 4)

    def secret_names(self) -> list[str]:
        return [f"{self.secret_name_prefix}-{index}" for index in range(self.secret_count)]


class StateSettings(StrictModel):
    backend: Literal["sqlite", "kubernetes"] = "sqlite"
    kubernetes: KubernetesStateSettings = KubernetesStateSettings()


KUBERNETES_NEEDS_KEY = (
    'state.backend = "kubernetes" needs an external fingerprint key shared by the replicas '
    '(e.g. sync.fingerprint_key = { env = "SYNCD_FINGERPRINT_KEY" } from a Kubernetes Secret); '
    "the Secrets of the state never hold one"
)
