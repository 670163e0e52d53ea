"""The long-running service (``daemon.Service``), its wiring, HTTP endpoints, metrics and logs."""
