"""The ``syncd`` command line.

```
syncd [--config PATH] run                              the long-running service
syncd [--config PATH] once [--mapping NAME]...         one reconciliation, one line per mapping
syncd [--config PATH] plan [--json] [--mapping NAME]... [--detailed-exitcode]
syncd [--config PATH] check                            config, credentials, Vault, Cloudflare
syncd [--config PATH] status [--json]                  what the state store knows per mapping
syncd devstack ...                                     local Vault and Cloudflare emulators
```

The common options (``--config``, ``--log-format``, ``--log-level``) work before or after the
command. ``--config`` defaults to ``$SYNCD_CONFIG``, else ``/etc/syncd/config.toml``. Exit codes: 0
all in sync (or all checks passed), 1 some mappings (or checks) failed, 2 bad configuration or usage,
including ``run`` or ``once`` on a state file another syncd process is writing (one writer per state
file: refused before anything is read or written; ``plan`` and ``status`` only read it), and
``plan --detailed-exitcode`` 3 when changes are pending. Command output goes to stdout, logs to
stderr (``run`` logs to stdout: it has no other output); on a terminal the one-shot commands log
warnings and errors only. A ``ConfigError`` prints every problem, each naming the file, the mapping
and the key. A closed pipe ends the command quietly with 141.
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
from syncd.config import LoggingSettings, Settings, load_config
from syncd.errors import ConfigError, SyncdError, UsageError

DEFAULT_CONFIG = "/etc/syncd/config.toml"
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a killed writer


def _default_config() -> str:
    return os.environ.get("SYNCD_CONFIG") or DEFAULT_CONFIG


_EXIT_CODES = """exit codes:
  0  all mappings in sync (check: every check passed)
  1  some mappings (or checks) failed
  2  bad configuration or usage, or the state file is held by another syncd process"""

# (help line, description, examples) per command; the description and examples show in `syncd CMD -h`.
_HELP: dict[str, tuple[str, str, str]] = {
    "run": (
        "run the service (scheduler, HTTP endpoints, signals)",
        "Run until SIGTERM/SIGINT: reconcile on start, on every interval, on Vault notifications and on\n"
        "POST /trigger. SIGHUP reloads the config. Logs go to stdout.",
        "syncd run --config /etc/syncd/config.toml",
    ),
    "once": (
        "reconcile once and exit",
        "Run one reconciliation and print one line per mapping (names, versions, counts; never values).\n"
        "It is the state file's writer: refused (exit 2) while `syncd run` holds the same state.",
        "syncd once\n  syncd once --mapping api-keys --mapping webhook",
    ),
    "plan": (
        "show what `once` would write or delete",
        "Show what `once` would write or delete, without writing anything (not even the state file).",
        "syncd plan\n  syncd plan --json | jq .\n  syncd plan --mapping api-keys --detailed-exitcode; echo $?",
    ),
    "check": (
        "check configuration, credentials, Vault and Cloudflare access",
        "Check the configuration, every credential, Vault access per secret and Cloudflare access per\n"
        "script and binding, one line per check, without writing anything.",
        "syncd check --config ./config.toml",
    ),
    "status": (
        "show the state store's view of every mapping",
        "Show what the state store knows per mapping (read-only: works while `syncd run` writes it).",
        "syncd status\n  syncd status --json",
    ),
}

_PLAN_EXIT = """exit codes:
  0  all in sync, nothing to change
  1  some mappings failed
  2  bad configuration or usage
  3  with --detailed-exitcode: changes are pending (without it, pending changes exit 0)"""

_RUN_EXIT = """exit codes:
  0  stopped by SIGTERM or SIGINT
  1  could not start (the ops port is taken, ...), or lost the leader Lease (Kubernetes restarts it)
  2  bad configuration or usage, or the state file is held by another syncd process"""

_STATUS_EXIT = """exit codes:
  0  every configured mapping in sync
  1  some mappings failed or were never pushed
  2  bad configuration or usage"""

# Commands whose exit codes differ from the shared _EXIT_CODES (once, check).
_COMMAND_EXIT = {"plan": _PLAN_EXIT, "run": _RUN_EXIT, "status": _STATUS_EXIT}


def _common_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    """The options every command takes, before or after the command name (``default`` is
    ``argparse.SUPPRESS`` on the subcommands so that an option given before the command is kept)."""
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        metavar="PATH",
        help=f"configuration file (default: $SYNCD_CONFIG or {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        default=default,
        help="default: the config's logging.format",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=default,
        help="default: logging.level (one-shot commands on a terminal: warning)",
    )


def _mapping_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mapping",
        action="append",
        metavar="NAME",
        dest="mappings",
        help="only this mapping (repeatable); default: every mapping",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Keep Cloudflare Worker secrets equal to values held in HashiCorp Vault.",
        epilog=_EXIT_CODES + "\n\nRun `syncd COMMAND -h` for a command's options and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"syncd {syncd.__version__}")
    _common_options(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands: dict[str, argparse.ArgumentParser] = {}
    for name, (help_line, description, examples) in _HELP.items():
        epilog = f"examples:\n  {examples}\n\n" + _COMMAND_EXIT.get(name, _EXIT_CODES)
        command = sub.add_parser(
            name,
            help=help_line,
            description=description,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common_options(command, default=argparse.SUPPRESS)
        commands[name] = command
    _mapping_option(commands["once"])
    _mapping_option(commands["plan"])
    commands["plan"].add_argument("--json", action="store_true", help="machine-readable output")
    commands["plan"].add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 3 when changes are pending (like terraform plan -detailed-exitcode; 2 stays usage/config)",
    )
    commands["status"].add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("devstack", add_help=False, help="run local Vault and Cloudflare emulators (syncd devstack -h)")
    sub.add_parser("demo", add_help=False, help="watch rotations reach emulated Workers live (syncd demo -h)")
    return parser


def _load(args: argparse.Namespace) -> Settings:
    path = args.config if args.config is not None else Path(_default_config())
    args.config = path
    return load_config(path)


def _configure_logs(args: argparse.Namespace, settings: Settings, stream: TextIO, *, one_shot: bool = True) -> None:
    _configure_log_settings(args, settings.logging, stream, one_shot=one_shot)


def _configure_log_settings(
    args: argparse.Namespace, logging: LoggingSettings, stream: TextIO, *, one_shot: bool = True
) -> None:
    """A one-shot command on a terminal logs warnings and errors only unless ``--log-level`` says
    otherwise: its result lines are the output there, and info lines would interleave with them.
    Redirected (cron, CI), the config's level holds, so the log keeps its push lines. The command
    line's ``--log-level``/``--log-format`` win over the file's ``[logging]``, also after a reload."""
    level = args.log_level or logging.level
    if one_shot and args.log_level is None and stream.isatty() and _LEVEL_ORDER.index(level) < _WARNING:
        level = "warning"
    configure_logging(format=args.log_format or logging.format, level=level, stream=stream)


_LEVEL_ORDER = ("debug", "info", "warning", "error")
_WARNING = _LEVEL_ORDER.index("warning")


def _only_mappings(args: argparse.Namespace, settings: Settings) -> frozenset[str] | None:
    """``--mapping`` names, each checked against the config (a typo must not look like "in sync")."""
    wanted: list[str] | None = getattr(args, "mappings", None)
    if not wanted:
        return None
    known = {m.name for m in settings.mappings}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        names = ", ".join(sorted(known)[:10]) + (", ..." if len(known) > 10 else "")
        raise UsageError(
            f"--mapping: no mapping named {', '.join(_shorten(n) for n in unknown)} in {args.config} "
            f"(configured: {names or 'none'})"
        )
    return frozenset(wanted)


def _shorten(name: str, limit: int = 80) -> str:
    return repr(name if len(name) <= limit else name[:limit] + "...")


def _cmd_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from syncd.app.service.wiring import build_service  # noqa: PLC0415 - imports the whole daemon

    _configure_logs(args, settings, sys.stdout, one_shot=False)

    def apply_logging(logging: LoggingSettings) -> None:  # a reload changed [logging]
        _configure_log_settings(args, logging, sys.stdout, one_shot=False)

    try:
        return build_service(settings, args.config, apply_logging=apply_logging).run_forever()
    except OSError as exc:  # the ops port is taken, the state directory is not writable, ...
        what = exc.strerror or type(exc).__name__
        print(f"syncd run: cannot start: {what}" + (f" ({exc.filename})" if exc.filename else ""), file=sys.stderr)
        return 1


def _cmd_once(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from syncd.app.cli.commands import run_once  # noqa: PLC0415

    only = _only_mappings(args, settings)
    _configure_logs(args, settings, sys.stderr)
    return run_once(settings, out, only_mappings=only)


def _cmd_plan(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from syncd.app.cli.commands import run_plan  # noqa: PLC0415

    only = _only_mappings(args, settings)
    _configure_logs(args, settings, sys.stderr)
    return run_plan(
        settings, out, as_json=args.json, only_mappings=only, detailed_exitcode=args.detailed_exitcode
    )


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
    try:
        return _main(argv)
    except BrokenPipeError:
        # `syncd check | head -1`: the reader went away. Quietly, as cat and grep do; Python would
        # otherwise also complain when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("devstack", "demo"):
        return _delegate(argv[0], argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "run":
        from syncd.app.service.heap import tune_allocator  # noqa: PLC0415 - only the daemon needs it

        tune_allocator()  # before the config's tables are read and before any thread starts
    if args.command is None:  # bare `syncd`: the help, as git and kubectl print it
        parser.print_help(sys.stderr)
        return EXIT_USAGE
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
