"""Drift checks of 1,000 scripts stay within their share of the rate budget and never cause a 429.

The emulator, the pacer and the checker share one advanceable clock (``syncd.devstack.httpkit.Clock``),
so ten five-minute rate windows pass in a few seconds and the emulator's own rate limiter (1,200 per
five minutes) judges the requests on the same time line. Requests are counted as the emulator
receives them (a transport that notes each response with the clock's time).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syncd.app.service.drift_checks import DriftChecker
from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
from syncd.clients.pacer import Pacer
from syncd.clients.worker_versions import WorkerVersionsClient
from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.devstack.httpkit import Clock
from syncd.engine.state import BindingRecord, StateStore
from syncd.model import SecretValue, Target, VaultSecretRef
from tests.engine.fakes import keys_mapping, make_settings

SCRIPTS = 1000
WINDOW = 300.0
TICK = 30.0


class Noted(httpx.HTTPTransport):
    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.lock = threading.Lock()
        self.seen: list[tuple[float, int]] = []  # (clock time, status)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.read()
        with self.lock:
            self.seen.append((self.clock.now(), response.status_code))
        return response


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(clock: Clock) -> Iterator[CloudflareEmulator]:
    names = [f"w{i:04d}" for i in range(SCRIPTS)]
    cf = CloudflareEmulator(clock=clock, scripts=names).start()
    try:
        for name in names:
            cf.hand_edit(name, upserts={"KEY": {"name": "KEY", "type": "secret_text", "text": "not-a-real-value"}})
        yield cf
    finally:
        threading.Thread(target=cf.stop, daemon=True).start()


def test_a_thousand_scripts_are_swept_within_the_share_and_without_a_429(
    emulator: CloudflareEmulator, clock: Clock, tmp_path: Path
) -> None:
    pacer = Pacer(1200, WINDOW, clock=clock.now, sleep=clock.advance)
    transport = Noted(clock)
    client = CloudflareClient(
        emulator.api_base, ApiTokenAuth(lambda: SecretValue(emulator.api_token)), pacer=pacer, transport=transport
    )
    account = emulator.account_id
    settings = make_settings(
        [keys_mapping(f"m{i:04d}", f"app/{i}", f"w{i:04d}", {"k": "KEY"}) for i in range(SCRIPTS)],
        account=account,
        drift_check_interval_seconds=WINDOW,
        drift_budget_share=0.1,
    )
    state = StateStore.open(tmp_path / "state.sqlite3")
    pushed = clock.now()
    state.record_bindings(
        [
            BindingRecord(
                Target(account, f"w{i:04d}"),
                "KEY",
                f"m{i:04d}",
                VaultSecretRef("secret", f"app/{i}"),
                1,
                "fp",
                "secret_text",
                owned=True,
                pushed_at=pushed,
            )
            for i in range(SCRIPTS)
        ]
    )
    requested: list[set[str]] = []
    checker = DriftChecker(
        settings, WorkerVersionsClient(client), state, pacer, request_cycle=requested.append, clock=clock.now
    )
    allowance = checker.allowance()
    start = clock.now()

    checked = 0
    for _ in range(int(11 * WINDOW / TICK)):
        clock.advance(TICK)
        checked += checker.run_due()

    statuses = [status for _, status in transport.seen]
    times = [t for t, _ in transport.seen]
    assert 429 not in statuses
    assert checked >= SCRIPTS  # every script checked at least once in eleven windows
    assert requested == []  # nothing drifted
    assert allowance == 108  # 10 % of the pacer's 1,080
    for t in times:  # every sliding window of the pacer's length
        assert sum(1 for u in times if t - WINDOW < u <= t) <= allowance
    assert pacer.remaining() >= pacer.budget - allowance  # the rest is left for rotations
    assert max(times) - start <= 11 * WINDOW + 60
    state.close()
    client.close()
