"""The application layer, in three floors; imports point down only.

- ``syncd.app.cli``: the command line (``syncd run|once|plan|check|status|demo``) and its output.
- ``syncd.app.service``: the wiring and the long-running service: scheduler, signals, the HTTP
  endpoints (health, metrics, status, trigger), metrics, logs, credentials.
- ``syncd.app.notify``: the Vault notification sources (socket audit device, Enterprise events) and
  the leading-edge dispatch of their writes into reconciles.
"""
