"""The one-shot commands: ``once``, ``plan`` and ``status`` (``check`` lives in ``commands_check``).

Each takes loaded ``Settings`` and an output stream, prints names, versions, reasons and error
codes (never a value or a credential) and returns the exit code: 0 all in sync, 1 some mappings
failed. Errors that concern the whole run (a bad config, a missing credential, an unreadable state
store, a state store whose writer is another syncd: ``StateLocked``, exit code 2, raised before any
call to Vault or Cloudflare) propagate as ``SyncdError`` and the command line maps them to their
``exit_code``. ``once`` is the state's writer; ``plan`` and ``status`` open it read-only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
import requests

from syncd.app.service.wiring import Clients, build_clients, build_reconciler, open_state
from syncd.config import Settings
from syncd.config.compact import PRIMARY_SOURCE
from syncd.engine.report import Action, CycleReport, MappingResult, Trigger
from syncd.engine.state import MEMORY, MappingStatus, StateBackend, StateStore
from syncd.errors import UsageError


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def _source_version(version: int | str | None) -> str:
    """A source's version: ``v7`` (KV), ``rotated <time>`` (a static role: never its fingerprint)."""
    if isinstance(version, str):
        return "rotated " + version.partition("#")[0]
    return _version(version)


def _moved(result: MappingResult) -> str:
    """Which sources moved since the last success: ``db v7 -> v8, cfg v2 -> v3`` (never a value)."""
    return ", ".join(f"{n} {_source_version(a)} -> {_source_version(b)}" for n, a, b in result.moved_sources)


def _heading(result: MappingResult) -> str:
    # KV v1 has no versions (and a secret that could not be read has none known): no "-" placeholder.
    version = "" if result.vault_version is None else f" v{result.vault_version}"
    return f"{result.mapping} ({result.ref}{version} -> {result.target})"


def _failure_line(result: MappingResult) -> str:
    if result.staged_version is not None:  # written, only not deployed yet: not a failure
        return f"STAGED {_heading(result)}: {result.error or result.error_code}"
    return f"FAIL {_heading(result)}: {result.error_code}: {result.error or ''}".rstrip(": ")


def _open_state_for(settings: Settings, *, dry_run: bool) -> StateBackend:
    """``once`` is the state's writer; ``plan`` only reads, so it works while the service runs.

    Without a state file ``plan`` uses an empty in-memory store: the same view (nothing recorded),
    and the file is not created by a command that must not write.
    """
    if not dry_run:
        if settings.state.backend == "kubernetes":
            # The Lease holder is that state's one writer: a write from here would fence it.
            raise UsageError(
                'syncd once cannot write a state.backend = "kubernetes" state (the leader of the '
                "running replicas writes it); use POST /trigger on the leader, or syncd plan to look"
            )
        return open_state(settings)
    if settings.state.backend != "sqlite" or Path(settings.sync.state_path).exists():
        return open_state(settings, exclusive=False)
    return StateStore.open(MEMORY)


def reconcile_once(
    settings: Settings,
    *,
    trigger: Trigger,
    dry_run: bool,
    vault_session: requests.Session | None = None,
    cloudflare_transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    only_mappings: frozenset[str] | None = None,
) -> CycleReport:
    """Open the state, build the clients and the reconciler, run one cycle under the configured
    deadline, close. The state comes first: when another syncd is its writer (``StateLocked``),
    nothing has been sent to Vault or Cloudflare."""
    state = _open_state_for(settings, dry_run=dry_run)
    try:
        clients: Clients = build_clients(
            settings, vault_session=vault_session, cloudflare_transport=cloudflare_transport, clock=clock
        )
        try:
            clients.tokens.ensure_token()
            reconciler = build_reconciler(settings, clients, state, clock=clock)
            deadline = clock() + settings.sync.cycle_timeout_seconds
            report: CycleReport = reconciler.reconcile(
                trigger=trigger, deadline=deadline, dry_run=dry_run, only_mappings=only_mappings
            )
            return report
        finally:
            clients.close()
    finally:
        state.close()


# -- once --------------------------------------------------------------------------------------------


def _counts(result: MappingResult) -> str:
    writes = sum(1 for c in result.changes if c.action is Action.WRITE)
    deletes = sum(1 for c in result.changes if c.action is Action.DELETE)
    adopted = sum(1 for c in result.changes if c.action is Action.ADOPT)
    parts = [f"{writes} written", f"{deletes} deleted"]
    if adopted:
        parts.append(f"{adopted} adopted")
    return ", ".join(parts)


def format_once(report: CycleReport) -> list[str]:
    lines = []
    for r in sorted(report.results, key=lambda r: r.mapping):
        if r.failed:
            lines.append(_failure_line(r))
        elif r.changes:
            lines.append(f"ok   {_heading(r)}: {_counts(r)}")
        else:
            lines.append(f"ok   {_heading(r)}: in sync")
    if report.timed_out:
        lines.append("FAIL cycle: passed its deadline before every mapping was reconciled")
    return lines


def run_once(settings: Settings, out: TextIO, *, only_mappings: frozenset[str] | None = None, **clients: Any) -> int:
    report = reconcile_once(settings, trigger=Trigger.ONCE, dry_run=False, only_mappings=only_mappings, **clients)
    for line in format_once(report):
        print(line, file=out)
    return report.exit_code


# -- plan --------------------------------------------------------------------------------------------


def plan_as_json(report: CycleReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "timed_out": report.timed_out,
        "mappings": [
            {
                "mapping": r.mapping,
                "target": str(r.target),
                "destination": r.target.as_json(),
                "vault_path": str(r.ref),
                "vault_version": r.vault_version,
                "sources": {PRIMARY_SOURCE: r.vault_version, **dict(r.source_versions)},
                "sources_moved": [
                    {"source": name, "from": _source_version(before), "to": _source_version(now)}
                    for name, before, now in r.moved_sources
                ],
                "in_sync": r.in_sync and not r.changes,
                "error_code": r.error_code,
                "error": r.error,
                "changes": [
                    {
                        "binding": c.binding,
                        "action": str(c.action),
                        "reason": str(c.reason),
                        "vault_version": c.vault_version,
                        "target": str(c.target),
                    }
                    for c in r.changes
                ],
            }
            for r in sorted(report.results, key=lambda r: r.mapping)
        ],
    }


def format_plan(report: CycleReport) -> list[str]:
    lines = []
    for r in sorted(report.results, key=lambda r: r.mapping):
        head = _heading(r)
        if r.failed:
            lines.append(_failure_line(r))
            continue
        if not r.changes:
            lines.append(f"{head}: no changes")
            continue
        moved = f" ({_moved(r)})" if r.moved_sources else ""
        lines.append(f"{head}: {len(r.changes)} change(s){moved}")
        for c in sorted(r.changes, key=lambda c: (c.target, c.binding)):
            target = f" on {c.target}" if c.target != r.target else ""
            lines.append(f"  {c.action:<6} {c.binding}{target} ({c.reason}, vault {_version(c.vault_version)})")
    lines.append(_plan_summary(report))
    return lines


def _plan_summary(report: CycleReport) -> str:
    changing = sum(1 for r in report.results if r.changes and not r.failed)
    failed = sum(1 for r in report.results if r.failed)
    in_sync = len(report.results) - changing - failed
    parts = [f"{in_sync} in sync"]
    if failed:
        parts.append(f"{failed} failed")
    if not changing:
        return f"plan: no changes; {len(report.results)} mapping(s): {', '.join(parts)}"
    return f"plan: {len(report.changes)} change(s) in {changing} mapping(s); {', '.join(parts)}"


EXIT_PENDING_CHANGES = 3


def run_plan(
    settings: Settings,
    out: TextIO,
    *,
    as_json: bool = False,
    only_mappings: frozenset[str] | None = None,
    detailed_exitcode: bool = False,
    **clients: Any,
) -> int:
    """Exit 0 in sync, 1 failed; with ``detailed_exitcode`` 3 when changes are pending (and nothing
    failed): terraform's ``-detailed-exitcode`` idea, on a code that does not collide with 2 (usage)."""
    report = reconcile_once(settings, trigger=Trigger.PLAN, dry_run=True, only_mappings=only_mappings, **clients)
    if as_json:
        print(json.dumps(plan_as_json(report), indent=2), file=out)
    else:
        for line in format_plan(report):
            print(line, file=out)
    pending = any(c.action is not Action.ADOPT for c in report.changes)
    if detailed_exitcode and report.ok and pending:
        return EXIT_PENDING_CHANGES
    return report.exit_code


# -- status ------------------------------------------------------------------------------------------


def _status_rows(settings: Settings, known: dict[str, MappingStatus]) -> list[dict[str, Any]]:
    rows = []
    configured = [m.name for m in settings.mappings]
    for name in configured + sorted(set(known) - set(configured)):
        status = known.get(name)
        rows.append(
            {
                "mapping": name,
                "configured": name in configured,
                "in_sync": bool(status and status.in_sync),
                "last_version": status.last_version if status else None,
                "last_pushed_at": status.last_pushed_at if status else None,
                "last_success_at": status.last_success_at if status else None,
                "last_attempt_at": status.last_attempt_at if status else None,
                "last_error_code": status.last_error_code if status else None,
                "last_error": status.last_error if status else None,
                "staged_version": status.staged_version if status else None,
            }
        )
    return rows


def _pushed(row: dict[str, Any]) -> str:
    if row["last_pushed_at"] is None:
        return "never pushed"
    version = "" if row["last_version"] is None else f"{_version(row['last_version'])} "
    return f"pushed {version}at {_when(row['last_pushed_at'])}"


def _checked(row: dict[str, Any]) -> str:
    at = row["last_attempt_at"]
    return "never checked" if at is None else f"last checked {_when(at)}"


def run_status(settings: Settings, out: TextIO, *, as_json: bool = False) -> int:
    """What the configured state backend recorded: the SQLite file, or with ``[state] backend =
    "kubernetes"`` the state Secrets the leader writes (read-only: works while the service runs)."""
    backend = settings.state.backend
    path = Path(settings.sync.state_path)
    found = backend != "sqlite" or path.exists()  # the manifests create the Secrets (a missing one is named)
    known: dict[str, MappingStatus] = {}
    if found:
        with open_state(settings, exclusive=False) as state:
            known = {s.mapping: s for s in state.all_mapping_status()}
    rows = _status_rows(settings, known)
    configured_ok = all(r["in_sync"] for r in rows if r["configured"])
    if as_json:
        where: dict[str, Any] = {"state_backend": backend}
        if backend == "sqlite":
            where["state_path"] = str(path)
        else:
            where["state_secrets"] = settings.state.kubernetes.secret_names()
        print(json.dumps({**where, "mappings": rows}, indent=2), file=out)
    else:
        if not found:
            print(f"no state yet at {path}", file=out)
        for r in rows:
            mark = "ok  " if r["in_sync"] else "FAIL" if r["last_error_code"] else "----"
            if r["staged_version"] is not None:
                mark = "STAGED"
            line = f"{mark} {r['mapping']}: {_pushed(r)}, {_checked(r)}"
            if r["last_error_code"]:
                line += f"; last error {r['last_error_code']}: {r['last_error'] or ''}".rstrip(": ")
            if not r["configured"]:
                line += " (no longer configured)"
            print(line, file=out)
    return 0 if configured_ok else 1
