"""One secret bound by many Workers: rotated as script secrets, or as one Secrets Store secret.

```
python bench/store_vs_scripts.py [--workers 500] [--latency 1] [--json]
```

(``python -m bench.store_vs_scripts`` works too.) The emulators (Vault and Cloudflare, the devstack)
run in this process; syncd is built by ``syncd.app.service.wiring`` exactly as ``syncd once`` and
``syncd run`` build it (real ``VaultReader``, ``CloudflareClient`` with its pacer, the
``SecretsStoreAdapter``), with the production rate limit on both sides: syncd's pacer at 1,200
requests per 5 minutes, and the emulator's limiter at the same (a 429 blocks for 5 minutes).

For each path, side by side:

- **scripts**: ``--workers`` Worker scripts, each with the secret as a script secret (one
  ``[[mapping]]`` per Worker, the way a shared secret is mapped today);
- **store**: one ``[[mapping]]`` with ``target = { secrets_store = ... }``: one store secret,
  which the same ``--workers`` Workers would bind (``secrets_store_secrets``).

Setup (not measured): the initial sync, with the emulator's write latency off and a high rate
limit on both sides, so that seeding 500 scripts does not take minutes. Then a new syncd (a fresh
pacer at the production limit, the same state file, as after a restart) and the emulator at the
production limit with ``--latency`` seconds per Cloudflare write (``LatencySpec``: every script
and store write sleeps it). Measured:

1. **unchanged world**: one reconcile: Cloudflare calls (must be 0);
2. **rotation**: a new value written to Vault, then one reconcile at once (what a Vault
   notification starts, leading edge); ``write -> every Worker`` is from the Vault write to the
   moment the last Worker's binding holds the new value (script path: the emulator's script
   secrets, read in-process after the cycle; store path: the store's value, which every bound
   Worker reads through ``env.NAME.get()``; the Cloudflare request log's end time of the last
   write that carried it). Cloudflare calls and 429 answers are counted from the emulator's
   request log; values are never printed. The first rotation after the start includes the store
   path's one-time ``find_store`` and listing (the ids are then kept);
3. **next rotation**: another one in the same process: what every later rotation costs.

Exit status 1 when a goal is missed: the store path within 2 s, at least 100x fewer Cloudflare
calls, no 429, an unchanged world costing 0 calls.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``syncd`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hvac
import structlog

from syncd.app.service.wiring import build_clients, build_reconciler, open_state
from syncd.config import Settings, parse_config
from syncd.devstack.stack import Devstack
from syncd.engine.report import Trigger

SECRET_PATH = "shared/db"
STORE_NAME = "default_secrets_store"
PRODUCTION_LIMIT = (1200, 300.0)


@dataclass
class PathResult:
    path: str
    workers: int
    unchanged_calls: int
    rotation_seconds: float
    rotation_calls: int
    rotation_writes: int
    responses_429: int
    arrived: bool
    second_rotation_calls: int


def _config(devstack: Devstack, state: Path, mappings: str, *, rate_limit: int) -> Settings:
    cf = devstack.cloudflare
    return parse_config(
        f"""
[vault]
address = "{devstack.vault.url}"
allow_inline_credentials = true
[vault.auth]
method = "token"
token = {{ value = "{devstack.vault.root_token}" }}
[cloudflare]
api_base = "{cf.api_base}"
account_id = "{cf.account_id}"
allow_inline_credentials = true
rate_limit_requests = {rate_limit}
[cloudflare.auth]
api_token = {{ value = "{cf.api_token}" }}
[sync]
state_path = "{state}"
cycle_timeout_seconds = 600
{mappings}
"""
    )


def _script_mappings(workers: int) -> str:
    return "".join(
        f"""
[[mapping]]
name = "w{i:03d}"
vault = {{ mount = "secret", path = "{SECRET_PATH}", kv_version = 2 }}
target = {{ script = "w{i:03d}" }}
secret_text = {{ keys = {{ password = "DB_PASSWORD" }} }}
"""
        for i in range(workers)
    )


def _store_mapping() -> str:
    return f"""
[[mapping]]
name = "shared-db"
vault = {{ mount = "secret", path = "{SECRET_PATH}", kv_version = 2 }}
target = {{ secrets_store = "{STORE_NAME}" }}
secret_text = {{ keys = {{ password = "db-password" }} }}
"""


def _api_requests(devstack: Devstack) -> list[dict[str, Any]]:
    return [r for r in list(devstack.cloudflare.state.requests) if r["path"].startswith("/client/v4")]


def _run_path(kind: str, workers: int, latency: float) -> PathResult:
    scripts = [f"w{i:03d}" for i in range(workers)] if kind == "scripts" else []
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # quiet: one line per push otherwise
    with Devstack(scripts=scripts) as devstack, tempfile.TemporaryDirectory() as tmp:
        devstack.wait_until_ready()
        cf = devstack.cloudflare
        if kind == "store":
            cf.secrets_store.create_store(cf.account_id, {"name": STORE_NAME})
        vault = hvac.Client(url=devstack.vault.url, token=devstack.vault.root_token)
        vault.secrets.kv.v2.create_or_update_secret(
            SECRET_PATH, {"password": secrets.token_hex(16)}, mount_point="secret"
        )
        mappings = _script_mappings(workers) if kind == "scripts" else _store_mapping()
        state_path = Path(tmp) / "state.sqlite3"

        # Setup: the initial sync, fast (no latency, a limit that never binds).
        cf.set_rate_limit(1_000_000, PRODUCTION_LIMIT[1])
        seed = _config(devstack, state_path, mappings, rate_limit=1_000_000)
        clients = build_clients(seed)
        clients.tokens.ensure_token()
        state = open_state(seed)
        try:
            seeded = build_reconciler(seed, clients, state).reconcile(trigger=Trigger.STARTUP)
            if not seeded.ok:
                raise SystemExit(
                    f"initial sync failed: {[(r.mapping, r.error) for r in seeded.results if r.failed][:3]}"
                )
        finally:
            state.close()
            clients.close()

        # Measured: production limits on both sides, the write latency, a fresh process.
        cf.set_rate_limit(*PRODUCTION_LIMIT)
        cf.set_write_latency(str(latency))
        settings = _config(devstack, state_path, mappings, rate_limit=PRODUCTION_LIMIT[0])
        clients = build_clients(settings)
        clients.tokens.ensure_token()
        state = open_state(settings)
        try:
            reconciler = build_reconciler(settings, clients, state)
            cf.state.requests.clear()
            assert reconciler.reconcile().ok
            unchanged = len(_api_requests(devstack))

            value = secrets.token_hex(16)
            cf.state.requests.clear()
            written_at = time.time()
            vault.secrets.kv.v2.create_or_update_secret(SECRET_PATH, {"password": value}, mount_point="secret")
            report = reconciler.reconcile(trigger=Trigger.NOTIFICATION)
            logged = _api_requests(devstack)
            if kind == "scripts":
                arrived = all(cf.secrets_of(s)["DB_PASSWORD"].get("text") == value for s in scripts)
            else:
                (store,) = cf.secrets_store.stores(cf.account_id)
                arrived = cf.secrets_store_value(cf.account_id, store.id, "db-password") == value
            # A second rotation in the same process: what every rotation after the first costs.
            cf.state.requests.clear()
            vault.secrets.kv.v2.create_or_update_secret(SECRET_PATH, {"password": value + "2"}, mount_point="secret")
            arrived = arrived and reconciler.reconcile(trigger=Trigger.NOTIFICATION).ok
            logged_again = _api_requests(devstack)
        finally:
            state.close()
            clients.close()
        writes = [r for r in logged if r["method"] in ("PATCH", "PUT", "POST", "DELETE")]
        last = max((r["end"] for r in writes), default=written_at)
        return PathResult(
            path=kind,
            workers=workers,
            unchanged_calls=unchanged,
            rotation_seconds=round(last - written_at, 3),
            rotation_calls=len(logged),
            rotation_writes=len(writes),
            responses_429=sum(1 for r in (*logged, *logged_again) if r["status"] == 429),
            arrived=arrived and report.ok,
            second_rotation_calls=len(logged_again),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=500)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per Cloudflare write")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [_run_path(kind, args.workers, args.latency) for kind in ("scripts", "store")]
    scripts, store = results
    problems = []
    if store.rotation_seconds > 2.0:
        problems.append(f"store path took {store.rotation_seconds} s (goal: within 2 s)")
    if store.rotation_calls * 100 > scripts.rotation_calls:
        problems.append("fewer than 100x fewer Cloudflare calls on the store path")
    if any(r.responses_429 for r in results):
        problems.append("a 429 was answered")
    if any(r.unchanged_calls for r in results):
        problems.append("an unchanged world cost Cloudflare calls")
    if not all(r.arrived for r in results):
        problems.append("a value did not arrive")
    if args.json:
        print(json.dumps({"results": [asdict(r) for r in results], "problems": problems}, indent=2))
    else:
        print(f"one secret bound by {args.workers} Workers, {args.latency:g} s per Cloudflare write, 1,200 req / 5 min")
        print(
            f"{'path':<8} {'unchanged CF calls':>18} {'write -> every Worker':>22} {'CF calls':>9} {'writes':>7} "
            f"{'next rotation CF calls':>23} {'429s':>5}"
        )
        for r in results:
            print(
                f"{r.path:<8} {r.unchanged_calls:>18} {r.rotation_seconds:>20.3f} s {r.rotation_calls:>9} "
                f"{r.rotation_writes:>7} {r.second_rotation_calls:>23} {r.responses_429:>5}"
            )
        ratio = scripts.rotation_calls / max(1, store.rotation_calls)
        speed = scripts.rotation_seconds / max(store.rotation_seconds, 1e-9)
        print(f"store path: {ratio:.0f}x fewer Cloudflare calls, {speed:.0f}x faster")
        print("problems: " + ("; ".join(problems) if problems else "none"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
