"""The write path over HTTP against the devstack: slow and failing scripts beside healthy ones, a
cycle near its deadline, concurrent writers that never overlap on one script, and the pacer.

Slow and failing scripts come from the emulator's fault injection (``/__devstack/faults``: latency
past the client timeout, or 503). Times are judged on the cycle report (its ``finished_at`` against
the deadline it was given, both on the reconciler's clock), with generous slack, never as absolute
durations.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
from syncd.clients.pacer import Pacer
from syncd.config import Settings
from syncd.deadlines import deadline_scope
from syncd.devstack.stack import Devstack
from syncd.engine.applier import GRACE_SECONDS
from syncd.engine.reconciler import Reconciler
from syncd.engine.report import Trigger
from syncd.errors import CloudflareTransportError, CycleTimeout
from syncd.model import SecretBody, SecretValue, Target
from tests.engine.conftest import CANARY, leaks
from tests.engine.fakes import keys_mapping
from tests.engine.test_reconciler import result
from tests.engine.test_reconciler_devstack import Stack

SCRIPTS = tuple(f"s{i}" for i in range(12))
SLACK = GRACE_SECONDS + 2.0  # past the deadline: the writers' grace plus a loaded machine's delays


class CountingTransport(httpx.HTTPTransport):
    """Counts requests in flight per Worker script, as the client sends them."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.in_flight: Counter[str] = Counter()
        self.max_per_script: Counter[str] = Counter()
        self.max_total = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        script = request.url.path.split("/scripts/", 1)[-1].split("/", 1)[0]
        with self._lock:
            self.in_flight[script] += 1
            self.max_per_script[script] = max(self.max_per_script[script], self.in_flight[script])
            self.max_total = max(self.max_total, sum(self.in_flight.values()))
        try:
            response = super().handle_request(request)
            response.read()
            return response
        finally:
            with self._lock:
                self.in_flight[script] -= 1


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with Devstack(scripts=SCRIPTS) as devstack:
        devstack.wait_until_ready()
        s = Stack(devstack, tmp_path / "state.sqlite3")
        try:
            yield s
        finally:
            s.state.close()
            s.cloudflare.close()


def use_client(stack: Stack, *, pacer: Pacer | None = None, timeout: float = 15.0, **kwargs: Any) -> None:
    """Replace the stack's Cloudflare client (production-like defaults: 15 s timeout, 5 attempts)."""
    stack.cloudflare.close()
    cf = stack.devstack.cloudflare
    stack.cloudflare = CloudflareClient(
        cf.api_base,
        ApiTokenAuth(lambda: SecretValue(cf.api_token)),
        pacer=pacer or Pacer(1200, 300.0),
        timeout=timeout,
        **kwargs,
    )


def fault(stack: Stack, script: str, **how: Any) -> None:
    body = {"method": "PATCH", "path": f"*/scripts/{script}/secrets-bulk", "count": 1000, **how}
    httpx.post(f"{stack.devstack.cloudflare.url}/__devstack/faults", json=body).raise_for_status()


def logged(stack: Stack) -> list[dict[str, Any]]:
    entries = httpx.get(f"{stack.devstack.cloudflare.url}/__devstack/requests").json()["requests"]
    return [e for e in entries if not e["path"].startswith("/__devstack")]


def patched_scripts(stack: Stack) -> list[str]:
    return sorted(e["path"].rsplit("/", 2)[-2] for e in logged(stack) if e["method"] == "PATCH")


def per_script(stack: Stack, scripts: tuple[str, ...], **cloudflare: Any) -> Settings:
    for script in scripts:
        stack.put(f"app/{script}", {"k": f"{CANARY}-{script}-1"})
    return stack.settings(*(keys_mapping(s, f"app/{s}", s, {"k": "KEY"}) for s in scripts), cloudflare=cloudflare)


def test_slow_and_failing_scripts_do_not_hold_the_healthy_ones_and_the_cycle_ends_at_its_deadline(
    stack: Stack,
) -> None:
    scripts = SCRIPTS[:5]
    healthy, slow, failing = scripts[:3], scripts[3], scripts[4]
    use_client(stack)  # 15 s timeout: only the cycle's deadline can cut the slow script short
    settings = per_script(stack, scripts)
    reconciler: Reconciler = stack.reconciler(settings)
    assert reconciler.reconcile(trigger=Trigger.STARTUP).ok

    for script in scripts:
        stack.put(f"app/{script}", {"k": f"{CANARY}-{script}-2"})
    fault(stack, slow, latency=10.0)  # answers long after the cycle's deadline
    fault(stack, failing, status=503)
    with capture_logs() as logs:
        deadline = time.time() + 4.0  # ample for the healthy scripts, even on a loaded machine
        report = reconciler.reconcile(deadline=deadline)
        assert report.finished_at <= deadline + SLACK
        for script in healthy:  # converged in this very cycle
            assert result(report, script).in_sync, result(report, script).error_code
            assert stack.texts(script) == {"KEY": f"{CANARY}-{script}-2"}
        assert result(report, slow).error_code in {"CloudflareTransportError", "CycleTimeout"}
        assert result(report, failing).error_code == "CloudflareServerError"
        assert {h.target.script for h in reconciler.script_health()} >= {failing}

        # The next cycle leaves the failing script alone (and the slow one, once it has timed out).
        stack.clear_requests()
        deadline = time.time() + 4.0
        after = reconciler.reconcile(deadline=deadline)
        assert after.finished_at <= deadline + SLACK
        assert result(after, failing).error_code == "ScriptBackedOff"
        assert failing not in patched_scripts(stack)
        assert all(result(after, s).in_sync for s in healthy)
    assert not leaks(repr(logs))


def test_a_cycle_too_close_to_its_deadline_starts_no_call(stack: Stack) -> None:
    settings = per_script(stack, SCRIPTS[:2])
    stack.clear_requests()
    report = stack.reconciler(settings).reconcile(deadline=time.time() + 0.2)
    assert report.timed_out
    assert {r.error_code for r in report.results} == {"CycleTimeout"}
    assert stack.requests("vault") == [] and stack.requests("cloudflare") == []

    target = Target(stack.devstack.cloudflare.account_id, SCRIPTS[0])
    body = SecretBody({"name": "KEY", "type": "secret_text", "text": CANARY})
    with deadline_scope(0.2), pytest.raises(CycleTimeout) as info:
        stack.cloudflare.bulk_update(target, {"KEY": body})
    assert stack.requests("cloudflare") == []
    assert not leaks(str(info.value))


def test_a_call_started_near_the_deadline_is_cut_at_the_deadline(stack: Stack) -> None:
    use_client(stack)  # 15 s timeout
    target = Target(stack.devstack.cloudflare.account_id, SCRIPTS[0])
    fault(stack, SCRIPTS[0], latency=6.0)
    body = SecretBody({"name": "KEY", "type": "secret_text", "text": CANARY})
    with deadline_scope(1.0), pytest.raises(CloudflareTransportError):
        # Timed out at ~1 s; no retry fits before the deadline, so no second attempt is started.
        stack.cloudflare.bulk_update(target, {"KEY": body})
    # The emulator logs a request once it has answered: it is still holding this one.
    assert patched_scripts(stack) == []


def test_concurrent_writers_never_overlap_on_one_script_over_http(stack: Stack) -> None:
    transport = CountingTransport()
    use_client(stack, transport=transport)
    big = SCRIPTS[0]
    stack.put("big", {f"k{i}": f"v{i}" for i in range(120)})  # two bulk calls on one script
    settings = stack.settings(
        keys_mapping("big", "big", big, {f"k{i}": f"N{i}" for i in range(120)}),
        *(keys_mapping(s, f"app/{s}", s, {"k": "KEY"}) for s in SCRIPTS[1:]),
        cloudflare={"write_concurrency": 4},
    )
    for script in SCRIPTS[1:]:
        stack.put(f"app/{script}", {"k": f"{CANARY}-{script}"})
    cf = stack.devstack.cloudflare.url
    # Every write takes 0.2 s (long enough for writers to overlap); the emulator answers 429 to two
    # writes overlapping on one script, as Cloudflare does, and counts them.
    httpx.post(f"{cf}/__devstack/latency", json={"kind": "fixed", "a": 0.2}).raise_for_status()
    report = stack.reconciler(settings).reconcile()
    assert report.ok, [(r.mapping, r.error_code) for r in report.results]
    assert httpx.get(f"{cf}/__devstack/edits").json()["concurrent_edit_429s"] == 0
    assert max(transport.max_per_script.values()) == 1
    assert 1 < transport.max_total <= 4
    assert patched_scripts(stack).count(big) == 2
    assert all(stack.texts(s) == {"KEY": f"{CANARY}-{s}"} for s in SCRIPTS[1:])


def test_concurrent_writers_never_exceed_the_account_rate_limit(stack: Stack) -> None:
    limit, window = 10, 2.0
    stack.devstack.cloudflare.set_rate_limit(limit, window, block=300.0)  # a 429 would block for 5 min
    # Half the limit: the emulator counts arrivals, and a loaded machine delays some requests more
    # than others between the pacer's grant and the emulator.
    use_client(stack, pacer=Pacer(limit, window, headroom=0.5))
    scripts = SCRIPTS[:6]
    settings = per_script(stack, scripts, write_concurrency=8)
    stack.clear_requests()
    report = stack.reconciler(settings).reconcile()  # a list and a write per script: 12 requests
    assert report.ok, [(r.mapping, r.error_code) for r in report.results]
    entries = logged(stack)
    assert len(entries) == 2 * len(scripts)
    assert [e for e in entries if e["status"] == 429] == []
    times = sorted(e["time"] for e in entries)
    busiest = max(sum(1 for t in times if start <= t < start + window) for start in times)
    assert busiest <= limit


def test_a_hanging_vault_read_is_cut_at_the_cycle_deadline(stack: Stack) -> None:
    settings = per_script(stack, SCRIPTS[:2])
    reconciler = stack.reconciler(settings)  # hvac timeout 5 s: only the deadline can end it sooner
    body = {"method": "GET", "path": f"/v1/secret/metadata/app/{SCRIPTS[0]}", "latency": 8.0, "count": 10}
    httpx.post(f"{stack.devstack.vault.url}/__devstack/faults", json=body).raise_for_status()
    deadline = time.time() + 1.5
    report = reconciler.reconcile(deadline=deadline)
    assert report.finished_at <= deadline + SLACK
    assert result(report, SCRIPTS[0]).error_code in {"VaultUnavailable", "CycleTimeout"}
    # Writes follow the reads, so the other mapping had no time left either: the next cycle's.
    assert result(report, SCRIPTS[1]).error_code == "CycleTimeout" and report.timed_out
