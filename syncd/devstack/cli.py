"""``syncd devstack``: run the Vault and Cloudflare emulators until SIGINT or SIGTERM.

```
syncd devstack [--bind 127.0.0.1] [--vault-port 8200] [--cloudflare-port 8787] [--script NAME ...]
               [--write-latency SPEC]
```

``--write-latency`` delays every Cloudflare script write (a real one creates and deploys a Worker
version and takes about a second): ``off`` (default), ``SECONDS``, ``uniform:LOW,HIGH`` or
``lognormal:MEDIAN,SIGMA``, optionally ``@SEED``; changeable later with ``POST /__devstack/latency``.

Port 0 picks a free port. Once both emulators accept connections, exactly one JSON line goes to
stdout (``vault_addr``, ``vault_token``, ``cloudflare_api_base``, ``cloudflare_api_token``,
``cloudflare_account_id``); then the process waits for a signal and exits 0. Exit 1 when the
emulators cannot start (a port in use), 2 for bad usage (an invalid script name).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from syncd.devstack.stack import Devstack

EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncd devstack", description="Run local Vault and Cloudflare API emulators.")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--vault-port", type=int, default=8200, help="Vault port, 0 for any free (default 8200)")
    parser.add_argument(
        "--cloudflare-port", type=int, default=8787, help="Cloudflare API port, 0 for any free (default 8787)"
    )
    parser.add_argument(
        "--script", action="append", default=[], metavar="NAME", help="pre-create a Worker script (repeatable)"
    )
    parser.add_argument(
        "--write-latency",
        default="off",
        metavar="SPEC",
        help="Cloudflare write latency: off, SECONDS, uniform:LOW,HIGH or lognormal:MEDIAN,SIGMA, optional @SEED",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack = Devstack(
                args.bind, args.vault_port, args.cloudflare_port, scripts=args.script, write_latency=args.write_latency
            )
        except OSError as exc:
            print(f"syncd devstack: cannot start the emulators: {exc}", file=sys.stderr)
            return EXIT_START_FAILED
        except ValueError as exc:
            print(f"syncd devstack: {exc}", file=sys.stderr)
            return EXIT_USAGE
        try:
            stack.wait_until_ready()
            sys.stdout.write(json.dumps(stack.describe()) + "\n")
            sys.stdout.flush()
            while not stop_requested.wait(timeout=1.0):
                pass
        finally:
            stack.stop()
        return EXIT_OK
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
