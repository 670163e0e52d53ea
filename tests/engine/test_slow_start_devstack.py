"""Slow start against the Cloudflare emulator's shared rate limiter (issue 16's 429 case).

Another client (the dashboard, Terraform, CI) has spent the account's budget: 2 of 300 requests
left. A rotation then touches five scripts with ``write_concurrency`` 8. Without slow start the five
writers start together before any ``Ratelimit`` header has been seen and the third meets a 429,
which on Cloudflare blocks every call of the user for five minutes. With it, one write goes first,
its answer says ``r=1``, and the others wait for the server's window to reset: 0 x 429, every
script written in the same cycle. The pacer runs on the emulator's clock, and its waits advance
that clock, so the 30 s window passes at once. Writes take 0.3 s (the emulator's latency model;
about 1 s on Cloudflare), so the writers are all under way before the first answer arrives.
"""

from __future__ import annotations

import threading

import httpx
import pytest

from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
from syncd.clients.pacer import Pacer
from syncd.devstack.httpkit import Clock
from syncd.engine.report import Trigger
from syncd.model import SecretValue
from tests.engine import test_write_path_devstack as write_path
from tests.engine.conftest import CANARY
from tests.engine.fakes import keys_mapping
from tests.engine.test_reconciler_devstack import Stack

pytestmark = pytest.mark.integration

SCRIPTS = write_path.SCRIPTS[:5]
stack = write_path.stack  # the fixture: the devstack with its scripts
LIMIT, WINDOW = 300, 30.0


class SharedSleep:
    """Waits on the emulator's clock: concurrent sleepers to one instant advance it once."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)
            target = self._clock.now() + seconds
        with self._lock:
            self._clock.advance(max(0.0, target - self._clock.now()))


def spend_as_another_client(stack: Stack, requests: int) -> None:
    cf = stack.devstack.cloudflare
    url = f"{cf.api_base}/accounts/{cf.account_id}/workers/scripts/{SCRIPTS[0]}/secrets"
    with httpx.Client(headers={"Authorization": f"Bearer {cf.api_token}"}) as other:
        answers = [other.get(url) for _ in range(requests)]
    assert {a.status_code for a in answers} == {200}
    assert answers[-1].headers["Ratelimit"].startswith(f'"default";r={LIMIT - requests};')


def test_a_rotation_into_an_almost_spent_shared_budget_meets_no_429(stack: Stack) -> None:
    cf = stack.devstack.cloudflare
    cf.set_rate_limit(LIMIT, WINDOW, block=300.0)
    sleep = SharedSleep(cf.state.clock)
    pacer = Pacer(LIMIT, WINDOW, clock=cf.state.clock.now, sleep=sleep)
    stack.cloudflare.close()
    stack.cloudflare = CloudflareClient(
        cf.api_base, ApiTokenAuth(lambda: SecretValue(cf.api_token)), pacer=pacer, timeout=5.0
    )
    for script in SCRIPTS:
        stack.put(f"app/{script}", {"k": f"{CANARY}-{script}-1"})
    settings = stack.settings(
        *(keys_mapping(s, f"app/{s}", s, {"k": "KEY"}) for s in SCRIPTS), cloudflare={"write_concurrency": 8}
    )
    reconciler = stack.reconciler(settings)
    assert reconciler.reconcile(trigger=Trigger.STARTUP).ok

    cf.state.clock.advance(WINDOW + 1)  # syncd idle; the account's window starts afresh
    spend_as_another_client(stack, LIMIT - 2)
    for script in SCRIPTS:
        stack.put(f"app/{script}", {"k": f"{CANARY}-{script}-2"})
    cf.set_write_latency("0.3")  # as in production, the writers all start before the first answer
    stack.clear_requests()
    report = reconciler.reconcile()

    logged = httpx.get(f"{cf.url}/__devstack/requests").json()["requests"]
    api = [e for e in logged if not e["path"].startswith("/__devstack")]
    assert [e["path"] for e in api if e["status"] == 429] == []
    assert report.ok, [(r.mapping, r.error_code) for r in report.results]
    assert all(stack.texts(s) == {"KEY": f"{CANARY}-{s}-2"} for s in SCRIPTS)
    assert len([e for e in api if e["method"] == "PATCH"]) == len(SCRIPTS)
    assert any(w > 1.0 for w in sleep.waits)  # the writers after the first two waited for the reset
