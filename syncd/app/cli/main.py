"""The ``syncd`` command line.

```
syncd run     [--config PATH]           the long-running service
syncd once    [--config PATH]           one reconciliation, one line per mapping
syncd plan    [--config PATH] [--json]  what ``once`` would write or delete, never values
syncd check   [--config PATH]           config, credentials, Vault, Cloudflare, one line per check
syncd status  [--config PATH] [--json]  what the state store knows per mapping
syncd devstack ...                      local Vault and Cloudflare emulators
```

``--config`` defaults to ``$SYNCD_CONFIG``, else ``/etc/syncd/config.toml``. Exit codes: 0 all in
sync (or all checks passed), 1 some mappings (or checks) failed, 2 bad configuration or usage,
including ``run`` or ``once`` on a state file another syncd process is writing (one writer per
state file: refused before anything is read or written; ``plan`` and ``status`` only read it).
Command output goes to stdout, logs to stderr (``run`` logs to stdout: it has no other output).
A ``ConfigError`` prints every problem, each naming the file, the mapping and the key.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import syncd
from syncd.app.service.logs import configure_logging
from syncd.config import Settings, load_config
from syncd.errors import ConfigError, SyncdError

DEFAULT_CONFIG = "/etc/syncd/config.toml"
EXIT_USAGE = 2


def _default_config() -> str:
    return os.environ.get("SYNCD_CONFIG") or DEFAULT_CONFIG


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"configuration file (default: $SYNCD_CONFIG or {DEFAULT_CONFIG})",
    )
    common.add_argument(
        "--log-format", choices=["auto", "json", "console"], default=None, help="default: the config's logging.format"
    )
    common.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default=None, help="default: logging.level"
    )
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Keep Cloudflare Worker secrets equal to values held in HashiCorp Vault.",
        epilog=(
            "Exit codes: 0 all in sync, 1 some mappings failed, 2 bad configuration or usage "
            "(also: the state file is held by another syncd process)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"syncd {syncd.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("run", parents=[common], help="run the service (scheduler, HTTP endpoints, signals)")
    sub.add_parser("once", parents=[common], help="reconcile once and exit")
    plan = sub.add_parser("plan", parents=[common], help="show what `once` would write or delete")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("check", parents=[common], help="check configuration, credentials, Vault and Cloudflare access")
    status = sub.add_parser("status", parents=[common], help="show the state store's view of every mapping")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("devstack", add_help=False, help="run local Vault and Cloudflare emulators (syncd devstack -h)")
    sub.add_parser("demo", add_help=False, help="watch rotations reach emulated Workers live (syncd demo -h)")
    return parser


def _load(args: argparse.Namespace) -> Settings:
    path = args.config if args.config is not None else Path(_default_config())
    args.config = path
    return load_config(path)


def _configure_logs(args: argparse.Namespace, settings: Settings, stream: TextIO) -> None:
    configure_logging(
        format=args.log_format or settings.logging.format,
        level=args.log_level or settings.logging.level,
        stream=stream,
    )


def _cmd_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from syncd.app.service.wiring import build_service  # noqa: PLC0415 - imports the whole daemon

    _configure_logs(args, settings, sys.stdout)
    try:
        return build_service(settings, args.config).run_forever()
    except OSError as exc:  # the ops port is taken, the state directory is not writable, ...
        print(f"syncd run: cannot start: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 1


def _cmd_once(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from syncd.app.cli.commands import run_once  # noqa: PLC0415

    _configure_logs(args, settings, sys.stderr)
    return run_once(settings, out)


def _cmd_plan(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from syncd.app.cli.commands import run_plan  # noqa: PLC0415

    _configure_logs(args, settings, sys.stderr)
    return run_plan(settings, out, as_json=args.json)


def _cmd_check(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from syncd.app.cli.commands_check import run_check  # noqa: PLC0415

    _configure_logs(args, settings, sys.stderr)
    print(f"ok config: {args.config} ({len(settings.mappings)} mapping(s))", file=out)
    return run_check(settings, out)


def _cmd_status(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from syncd.app.cli.commands import run_status  # noqa: PLC0415

    _configure_logs(args, settings, sys.stderr)
    return run_status(settings, out, as_json=args.json)


_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings, TextIO], int]] = {
    "run": _cmd_run,
    "once": _cmd_once,
    "plan": _cmd_plan,
    "check": _cmd_check,
    "status": _cmd_status,
}


def _delegate(command: str, argv: list[str]) -> int:
    """``devstack`` and ``demo`` need the emulators: imported only here, so the daemon never loads them."""
    if command == "devstack":
        from syncd.devstack.cli import main as delegate_main  # noqa: PLC0415
    else:
        from syncd.app.cli.demo import main as delegate_main  # noqa: PLC0415
    try:
        return delegate_main(argv)
    except SystemExit as exc:  # their argparse: --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("devstack", "demo"):
        return _delegate(argv[0], argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        settings = _load(args)
        return _COMMANDS[args.command](args, settings, sys.stdout)
    except ConfigError as exc:
        print(f"syncd {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except SyncdError as exc:
        print(f"syncd {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
