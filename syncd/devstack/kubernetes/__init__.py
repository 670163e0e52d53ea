"""An emulator of the Kubernetes API for what syncd uses: Leases and Secrets in a namespace.

```python
from syncd.devstack.kubernetes import KubernetesEmulator

with KubernetesEmulator(namespace="syncd") as kube:
    kube.url, kube.token, kube.namespace  # for the official client's Configuration.host / api_key
```

Modules: ``server`` (the emulator, real and admin routes), ``store`` (objects and the cluster-wide
``resourceVersion``), ``resources`` (Lease and Secret validation), ``patch`` (merge and JSON patches),
``access`` (tokens with RBAC-like rules, partitions), ``status`` (``metav1.Status`` bodies).

Sources for the behaviour: ``staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go`` and
``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go`` in
github:kubernetes/kubernetes (Status bodies, messages, the Forbidden wording); the official Python
client ``kubernetes`` 37.0.2 (paths, content types, ``ApiException`` parsing), which drives the
emulator in ``tests/devstack/kubernetes``; issues quoting live answers for the Secret size limit
(helm/helm#7126) and the MicroTime layout (krustlet/krustlet#5). What could not be confirmed is a
switch in ``server.KubernetesConfig``.
"""

from syncd.devstack.kubernetes.access import Rule
from syncd.devstack.kubernetes.resources import LEASES, SECRETS
from syncd.devstack.kubernetes.server import KubernetesConfig, KubernetesEmulator

__all__ = ["LEASES", "SECRETS", "KubernetesConfig", "KubernetesEmulator", "Rule"]
