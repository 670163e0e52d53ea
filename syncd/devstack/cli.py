"""``syncd devstack``: run the Vault, Cloudflare and Kubernetes API emulators until SIGINT or SIGTERM.

```
syncd devstack [--bind 127.0.0.1] [--vault-port 8200] [--cloudflare-port 8787] [--kubernetes-port 0]
               [--kubernetes-namespace syncd] [--script NAME ...] [--write-config PATH]
               [--write-latency SPEC] [--workers-port 0] [--workerd PATH] [--no-workers]
               [--db-role NAME[:PERIOD] ...]
```

``--db-role app:1h`` mounts Vault's database engine at ``database/`` with a connection ``devdb`` and a
static role ``app`` whose password rotates by itself every hour on the emulator's clock (read it at
``database/static-creds/app``); the period defaults to ``1h`` and must be at least ``5s``.

``--write-config PATH`` writes a ready syncd config for these emulators (and its credential files,
mode 0600) before the JSON line, and prints to stderr how to seed a secret and enable the audit
device (``syncd.devstack.write_config``); without ``--script`` it creates the Worker ``my-worker``.

``--write-latency`` delays every Cloudflare script write (a real one creates and deploys a Worker
version and takes about a second): ``off`` (default), ``SECONDS``, ``uniform:LOW,HIGH`` or
``lognormal:MEDIAN,SIGMA``, optionally ``@SEED``; changeable later with ``POST /__devstack/latency``.

The deployed version(s) of every script run in one workerd process (``syncd.devstack.workers``):
each Worker answers on the Workers address (``workers_url`` in the JSON line) at
``{workers_url}/{script}/`` or with ``Host: {script}.localhost``; a script without uploaded code
runs the default Worker, which reports a fingerprint of each binding. workerd comes from
``--workerd``, ``$SYNCD_WORKERD``, ``.tools`` (``scripts/setup-workers.sh``) or ``PATH``; without it
the devstack says so on stderr and serves the APIs alone (no ``workers_url``). ``--no-workers``
turns the runtime off.

Port 0 picks a free port; the Kubernetes API takes one by default (callers read its address from
the JSON line; a fixed default would collide with callers that pin only the other two ports to 0).
Once every emulator accepts connections, exactly one JSON line goes to stdout (``vault_addr``,
``vault_token``, ``cloudflare_api_base``, ``cloudflare_api_token``, ``cloudflare_account_id``,
``kubernetes_api``, ``kubernetes_token``, ``kubernetes_namespace``, ``workers_url``); then the process waits for a
signal and exits 0. Exit 1 when the emulators cannot start (a port in use), 2 for bad usage (an
invalid script name or latency spec).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from syncd.devstack.stack import Devstack
from syncd.devstack.workers.process import WorkerdFailed
from syncd.devstack.write_config import DEFAULT_SCRIPT, instructions, write_devstack_config

EXIT_OK = 0
EXIT_START_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd devstack", description="Run local Vault, Cloudflare and Kubernetes API emulators."
    )
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--vault-port", type=int, default=8200, help="Vault port, 0 for any free (default 8200)")
    parser.add_argument(
        "--cloudflare-port", type=int, default=8787, help="Cloudflare API port, 0 for any free (default 8787)"
    )
    parser.add_argument("--kubernetes-port", type=int, default=0, help="Kubernetes API port (default 0: any free port)")
    parser.add_argument(
        "--kubernetes-namespace", default="syncd", help="namespace of the Leases and Secrets (default syncd)"
    )
    parser.add_argument(
        "--script", action="append", default=[], metavar="NAME", help="pre-create a Worker script (repeatable)"
    )
    parser.add_argument(
        "--write-config", type=Path, metavar="PATH", help="write a ready syncd config for these emulators to PATH"
    )
    parser.add_argument(
        "--write-latency",
        default="off",
        metavar="SPEC",
        help="Cloudflare write latency: off, SECONDS, uniform:LOW,HIGH or lognormal:MEDIAN,SIGMA, optional @SEED",
    )
    parser.add_argument(
        "--db-role",
        action="append",
        default=[],
        metavar="NAME[:PERIOD]",
        help="seed a Vault database static role rotating every PERIOD (default 1h; repeatable)",
    )
    parser.add_argument("--workers-port", type=int, default=0, help="Workers address port (default 0: any free port)")
    parser.add_argument("--workerd", metavar="PATH", help="the workerd binary (default: $SYNCD_WORKERD, .tools, PATH)")
    parser.add_argument("--no-workers", action="store_true", help="do not run the deployed Workers in workerd")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.write_config is not None and not args.script:
        args.script = [DEFAULT_SCRIPT]
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            stack = Devstack(
                args.bind,
                args.vault_port,
                args.cloudflare_port,
                scripts=args.script,
                kubernetes_port=args.kubernetes_port,
                kubernetes_namespace=args.kubernetes_namespace,
                write_latency=args.write_latency,
                db_roles=args.db_role,
                workers="off" if args.no_workers else ("on" if args.workerd else "auto"),
                workerd=args.workerd,
                workers_port=args.workers_port,
            )
        except (OSError, WorkerdFailed) as exc:
            print(f"syncd devstack: cannot start the emulators: {exc}", file=sys.stderr)
            return EXIT_START_FAILED
        except ValueError as exc:
            print(f"syncd devstack: {exc}", file=sys.stderr)
            return EXIT_USAGE
        try:
            stack.wait_until_ready()
            if stack.workers_note is not None:
                print(
                    f"syncd devstack: {stack.workers_note}; serving the APIs without a Workers runtime",
                    file=sys.stderr,
                    flush=True,
                )
            if args.write_config is not None:
                try:
                    written = write_devstack_config(args.write_config, stack.describe(), args.script[0])
                except OSError as exc:
                    print(f"syncd devstack: cannot write {args.write_config}: {exc.strerror}", file=sys.stderr)
                    return EXIT_USAGE
                print(instructions(written), file=sys.stderr, flush=True)
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
