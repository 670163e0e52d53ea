"""The clients layer: Vault (hvac) and Cloudflare (httpx), each with its transport from outside.

- ``observe``: the per-attempt ``RequestObserver`` hook (metrics) and ``NULL_OBSERVER``.
- ``vault``: ``VaultReader`` (``SecretSource``) and ``build_hvac_client``.
- ``vault_auth``: login strategies and ``VaultTokenManager`` (token lifetime).
- ``vault_calls``: hvac error mapping, observation and retries shared by the two above.
- ``cloudflare``: ``CloudflareClient`` (``WorkerSecrets``), ``ApiTokenAuth``, ``GlobalKeyAuth``.
- ``cloudflare_errors``: the API envelope, error codes, ``Retry-After`` and ``Ratelimit`` parsing.
- ``pacer``: ``Pacer``, the per-credential rate limiter, and ``RateBudgetExhausted``.
- ``secrets_store``: ``SecretsStoreClient`` (stores, their secrets, the quota) on a ``CloudflareClient``.

Nothing here imports ``syncd.config``, ``syncd.engine``, ``syncd.app`` or ``syncd.devstack``; the
classes satisfy ``syncd.engine.ports`` structurally.
"""
