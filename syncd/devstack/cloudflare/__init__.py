"""An emulator of the Cloudflare API v4 Worker secrets endpoints, for tests and the devstack.

```python
from syncd.devstack.cloudflare import CloudflareEmulator

with CloudflareEmulator(scripts=["my-worker"]) as cf:
    cf.api_base  # "http://127.0.0.1:PORT/client/v4", for the SDK's base_url
    cf.account_id, cf.api_token
```

Modules: ``server`` (the emulator), ``api`` (real paths), ``admin`` (``/__devstack`` routes),
``store`` (scripts, secrets, versions), ``validation``, ``auth``, ``ratelimit``, ``upload``
(multipart script upload), ``envelope`` (envelope and error codes), ``config`` (switches).

Sources for the behaviour (looked up with the ``search`` tool): the official ``cloudflare``
Python SDK 5.9 in this venv (paths, bodies, ``bulk_update``, ``url_encoded``); wrangler's
``secret`` command and tests in cloudflare/workers-sdk (10007, 10215, draft-worker upload);
workers-sdk PR #10668 (``url_encoded``); issues quoting live answers (6003/6111, 6007, 7003 +
7000 with status 400, 7001, 9106 with status 400, 10053, 10054, 10056, 10214, 10021).
What could not be confirmed is a switch in ``config.EmulatorConfig``.
"""

from syncd.devstack.cloudflare.config import EmulatorConfig
from syncd.devstack.cloudflare.server import CloudflareEmulator

__all__ = ["CloudflareEmulator", "EmulatorConfig"]
