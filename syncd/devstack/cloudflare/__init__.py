"""An emulator of the Cloudflare API v4 Worker secrets endpoints, for tests and the devstack.

```python
from syncd.devstack.cloudflare import CloudflareEmulator

with CloudflareEmulator(scripts=["my-worker"]) as cf:
    cf.api_base  # "http://127.0.0.1:PORT/client/v4", for the SDK's base_url
    cf.account_id, cf.api_token
```

Modules: ``server`` (the emulator), ``api`` (real paths), ``versions_api`` (versions,
deployments, settings, beta ``workers/workers`` routes), ``admin`` (``/__devstack`` routes),
``store`` (scripts, secrets, the write rules), ``versions`` (version and deployment records and
their wire shapes), ``lifecycle`` (version/deployment/settings operations, admin edits),
``edits`` (write latency, one write per script, the concurrent-edit 429), ``validation``,
``auth``, ``ratelimit``, ``upload`` (multipart upload and settings), ``envelope`` (envelope and
error codes), ``config`` (switches); the Secrets Store API in ``secrets_store`` (state and rules),
``secrets_store_api`` (real routes), ``secrets_store_admin`` and ``secrets_store_config`` (switches).

Sources for the behaviour (looked up with the ``search`` tool): the official ``cloudflare``
Python SDK 5.9 in this venv (paths, bodies, ``bulk_update``, ``url_encoded``, versions,
deployments, settings, beta versions); wrangler (cloudflare/workers-sdk at f830836:
``versions/secrets/index.ts`` for ``versions/latest`` and 10222, ``deploy-helpers`` versions-api
for deployments, the pre-#13964 ``secret bulk`` via settings with inherited bindings); wrangler's
``secret`` command and tests in cloudflare/workers-sdk (10007, 10215, draft-worker upload);
workers-sdk PR #10668 (``url_encoded``); issues quoting live answers (6003/6111, 6007, 7003 +
7000 with status 400, 7001, 9106 with status 400, 10053, 10054, 10056, 10214, 10021).
What could not be confirmed is a switch in ``config.EmulatorConfig``.
"""

from syncd.devstack.cloudflare.config import EmulatorConfig
from syncd.devstack.cloudflare.server import CloudflareEmulator

__all__ = ["CloudflareEmulator", "EmulatorConfig"]
