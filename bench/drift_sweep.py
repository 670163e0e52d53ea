"""Drift checks of many scripts: how long a full sweep takes and what it costs in the rate budget.

    python bench/drift_sweep.py [--scripts 1000] [--share 0.1] [--interval 300] [--windows 12] [--json]

One in-process Cloudflare emulator, a ``Pacer`` and a ``DriftChecker`` share one advanceable clock
(``syncd.devstack.httpkit.Clock``), so rate windows pass in seconds while the emulator's own
limiter (1,200 per five minutes) judges every request on the same time line. Every script holds one
binding syncd owns; nobody edits anything. The drift job is run every ``interval / 10`` seconds of
fake time. Printed: the allowance per window, the most requests drift checks made in any window
(sliding), the windows until every script was checked once, requests per check, and 429s.
Counts, not durations: the figures do not depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path

import httpx

from syncd.app.service.drift_checks import DriftChecker
from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
from syncd.clients.pacer import Pacer
from syncd.clients.worker_versions import WorkerVersionsClient
from syncd.config import Settings
from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.devstack.httpkit import Clock
from syncd.engine.state import BindingRecord, StateStore
from syncd.model import SecretValue, Target, VaultSecretRef

WINDOW = 300.0


class Noted(httpx.HTTPTransport):
    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.lock = threading.Lock()
        self.seen: list[tuple[float, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.read()
        with self.lock:
            self.seen.append((self.clock.now(), response.status_code))
        return response


def settings_for(account: str, scripts: int, share: float, interval: float) -> Settings:
    return Settings.model_validate(
        {
            "vault": {"address": "http://vault.invalid"},
            "cloudflare": {"account_id": account, "auth": {"api_token": {"env": "CF_TOKEN"}}},
            "sync": {"drift_check_interval_seconds": interval, "drift_budget_share": share},
            "mapping": [
                {
                    "name": f"m{i:05d}",
                    "vault": {"mount": "secret", "path": f"app/{i}"},
                    "target": {"script": f"w{i:05d}"},
                    "secret_text": {"keys": {"k": "KEY"}},
                }
                for i in range(scripts)
            ],
        }
    )


def run(scripts: int, share: float, interval: float, windows: int) -> dict[str, float]:
    clock = Clock()
    names = [f"w{i:05d}" for i in range(scripts)]
    emulator = CloudflareEmulator(clock=clock, scripts=names).start()
    try:
        for name in names:
            emulator.hand_edit(name, upserts={"KEY": {"name": "KEY", "type": "secret_text", "text": "bench"}})
        pacer = Pacer(1200, WINDOW, clock=clock.now, sleep=clock.advance)
        transport = Noted(clock)
        client = CloudflareClient(
            emulator.api_base, ApiTokenAuth(lambda: SecretValue(emulator.api_token)), pacer=pacer, transport=transport
        )
        account = emulator.account_id
        with tempfile.TemporaryDirectory() as tmp:
            state = StateStore.open(Path(tmp) / "state.sqlite3")
            pushed = clock.now()
            state.record_bindings(
                [
                    BindingRecord(
                        Target(account, name),
                        "KEY",
                        f"m{i:05d}",
                        VaultSecretRef("secret", f"app/{i}"),
                        1,
                        "fp",
                        "secret_text",
                        owned=True,
                        pushed_at=pushed,
                    )
                    for i, name in enumerate(names)
                ]
            )
            checker = DriftChecker(
                settings_for(account, scripts, share, interval),
                WorkerVersionsClient(client),
                state,
                pacer,
                request_cycle=lambda _: None,
                clock=clock.now,
            )
            start = clock.now()
            tick = max(1.0, interval / 10)
            checked, swept_at = 0, None
            for _ in range(int(windows * WINDOW / tick)):
                clock.advance(tick)
                checked += checker.run_due()
                if swept_at is None and checked >= scripts:
                    swept_at = clock.now() - start
            state.close()
        client.close()
        times = [t for t, _ in transport.seen]
        busiest = max((sum(1 for u in times if t - WINDOW < u <= t) for t in times), default=0)
        return {
            "scripts": scripts,
            "share": share,
            "allowance_per_window": checker.allowance(),
            "max_requests_in_any_window": busiest,
            "checks": checked,
            "requests": len(times),
            "requests_per_check": round(len(times) / max(1, checked), 3),
            "windows_to_sweep_all": round(swept_at / WINDOW, 2) if swept_at is not None else float("nan"),
            "http_429": sum(1 for _, status in transport.seen if status == 429),
            "left_for_rotations_now": pacer.remaining(),
        }
    finally:
        threading.Thread(target=emulator.stop, daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scripts", type=int, default=1000)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--interval", type=float, default=300.0)
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = run(args.scripts, args.share, args.interval, args.windows)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>28}: {value}")
    ok = figures["http_429"] == 0 and figures["max_requests_in_any_window"] <= figures["allowance_per_window"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
