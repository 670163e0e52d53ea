"""``python -m bench._devstack_main``: ``python -m syncd.devstack`` with Nagle's algorithm off.

WORKAROUND, to delete once ``syncd/devstack/httpkit.py`` sets ``disable_nagle_algorithm = True``
on its request handler. The emulators write a response's headers and body in two ``send`` calls;
with Nagle on, the body waits for the client's delayed ACK (40 ms on Linux) on every keep-alive
request, which caps any client at ~25 requests/s per connection and turns the benchmark's wall
times into a measure of that stall. Real Vault (Go's net/http) and Cloudflare set TCP_NODELAY.
"""

import socketserver

from syncd.devstack.cli import main

socketserver.StreamRequestHandler.disable_nagle_algorithm = True

raise SystemExit(main())
