from __future__ import annotations

import threading

import pytest

from syncd.clients.pacer import Pacer, RateBudgetExhausted
from syncd.errors import CloudflareRateLimited
from tests.clients.conftest import FakeTime
from tests.waiting import wait_until


def make(fake_time: FakeTime, limit: int = 10, window: float = 60.0, **kw: object) -> Pacer:
    return Pacer(limit, window, clock=fake_time.clock, sleep=fake_time.sleep, **kw)  # type: ignore[arg-type]


def test_grants_up_to_the_budget_without_waiting(fake_time: FakeTime) -> None:
    pacer = make(fake_time, limit=10, headroom=0.9)
    assert pacer.budget == 9
    for _ in range(9):
        pacer.acquire()
    assert fake_time.sleeps == []
    assert pacer.remaining() == 0


def test_waits_until_the_oldest_grant_leaves_the_window(fake_time: FakeTime) -> None:
    pacer = make(fake_time, limit=3, window=60.0, headroom=1.0)
    pacer.acquire()
    fake_time.advance(10)
    pacer.acquire()
    pacer.acquire()
    pacer.acquire()  # 4th: the first grant (t=1000) expires at t=1060, now is 1010
    assert fake_time.sleeps == [pytest.approx(50.0)]
    assert fake_time.now == pytest.approx(1060.0)


def test_never_exceeds_budget_in_any_window(fake_time: FakeTime) -> None:
    pacer = make(fake_time, limit=20, window=30.0, headroom=0.5)
    grants: list[float] = []
    for i in range(100):
        pacer.acquire()
        grants.append(fake_time.now)
        fake_time.advance(0.1 * (i % 3))
    for t in grants:
        in_window = [g for g in grants if t <= g < t + 30.0]
        assert len(in_window) <= 10


def test_deadline_that_would_pass_raises_typed_error_without_sleeping(fake_time: FakeTime) -> None:
    pacer = make(fake_time, limit=1, window=60.0, headroom=1.0)
    pacer.acquire()
    with pytest.raises(RateBudgetExhausted) as info:
        pacer.acquire(deadline=fake_time.now + 30)
    assert isinstance(info.value, CloudflareRateLimited)
    assert info.value.retry_after == pytest.approx(60.0)
    assert not info.value.retryable
    assert fake_time.sleeps == []


def test_pause_until_blocks_every_caller(fake_time: FakeTime) -> None:
    pacer = make(fake_time, limit=100)
    pacer.pause_for(7.5)
    assert pacer.remaining() == 0
    assert pacer.paused_for() == pytest.approx(7.5)
    pacer.acquire()
    assert fake_time.sleeps == [pytest.approx(7.5)]
    pacer.acquire()
    assert len(fake_time.sleeps) == 1


def test_pause_is_never_shortened(fake_time: FakeTime) -> None:
    pacer = make(fake_time)
    pacer.pause_for(20)
    pacer.pause_for(5)
    assert pacer.paused_for() == pytest.approx(20)


def test_server_budget_lower_than_ours_paces_down(fake_time: FakeTime) -> None:
    pacer = make(fake_time, limit=100, window=300.0, headroom=0.9, server_reserve=2)
    pacer.observe_server_budget(remaining=5, reset=40)
    assert pacer.remaining() == 3
    for _ in range(3):
        pacer.acquire()
    assert fake_time.sleeps == []
    pacer.acquire()  # the account has only the reserve left: wait for the server's reset
    assert fake_time.sleeps == [pytest.approx(40.0)]


def test_server_budget_higher_than_ours_changes_nothing(fake_time: FakeTime) -> None:
    pacer = make(fake_time, limit=10, headroom=1.0, server_reserve=0)
    pacer.observe_server_budget(remaining=1000, reset=10)
    assert pacer.remaining() == 10


def test_is_thread_safe(fake_time: FakeTime) -> None:
    pacer = make(fake_time, limit=1000, headroom=1.0)

    def take_100() -> None:
        for _ in range(100):
            pacer.acquire()

    threads = [threading.Thread(target=take_100) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert pacer.remaining() == 1000 - 800


def test_rejects_nonsense_configuration() -> None:
    with pytest.raises(ValueError):
        Pacer(0)
    with pytest.raises(ValueError):
        Pacer(10, headroom=1.5)


# -- slow start ---------------------------------------------------------------------------------


def test_after_an_idle_start_one_request_goes_first_and_its_ratelimit_answer_releases_the_others(
    fake_time: FakeTime,
) -> None:
    """2 of 300 left (another client spent the rest): the probe learns r=1, one more goes, the
    others wait for the server's reset instead of starting together into a 429."""
    pacer = make(fake_time, limit=300, window=300.0, server_reserve=0)
    granted: list[tuple[float, bool]] = []
    lock = threading.Lock()

    def write() -> None:
        with pacer.slot() as slot:
            with lock:
                granted.append((fake_time.now, slot.probe))
            slot.answered((0, 40.0) if fake_time.now < 1040.0 else (290, 260.0))

    with pacer.slot() as first:
        assert first.probe
        writers = [threading.Thread(target=write) for _ in range(4)]
        for writer in writers:
            writer.start()
        assert wait_until(lambda: pacer.waiting_for_probe() == 4)
        assert granted == []  # nobody starts before the first answer
        first.answered((1, 40.0))  # the account has one request left, its window resets in 40 s
    for writer in writers:
        writer.join(timeout=10)
    times = sorted(t for t, _ in granted)
    assert times[0] == 1000.0 and all(t >= 1040.0 for t in times[1:])  # one now, the rest after the reset
    assert [probe for _, probe in granted].count(True) >= 1  # after the reset the budget is unknown again


def test_fresh_knowledge_needs_no_probe_until_it_is_stale_or_the_server_window_resets(fake_time: FakeTime) -> None:
    pacer = make(fake_time, limit=300, window=300.0, stale_after=10.0)
    with pacer.slot() as slot:
        assert slot.probe
        slot.answered((250, 100.0))
    with pacer.slot() as slot:
        assert not slot.probe  # answered 0 s ago: the others need not wait
        slot.answered((249, 100.0))
    fake_time.advance(10.0)  # idle for stale_after
    with pacer.slot() as slot:
        assert slot.probe
        slot.answered((248, 5.0))
    fake_time.advance(6.0)  # the server's window reset: what others spend now is unknown
    with pacer.slot() as slot:
        assert slot.probe


def test_a_probe_without_an_answer_teaches_nothing_and_one_without_a_header_stops_probing(
    fake_time: FakeTime,
) -> None:
    pacer = make(fake_time, limit=300, window=300.0)
    with pacer.slot() as slot:
        assert slot.probe  # then a transport error: no answer
    with pacer.slot() as slot:
        assert slot.probe
        slot.answered(None)  # a server (or proxy) that sends no Ratelimit header
    with pacer.slot() as slot:
        assert not slot.probe


def test_plain_acquire_never_probes_and_a_caller_past_its_deadline_does_not_wait_for_a_probe(
    fake_time: FakeTime,
) -> None:
    pacer = make(fake_time, limit=300, window=300.0)
    pacer.acquire()
    pacer.acquire()  # no slot reported anything: still no probe in flight, nobody waits
    with pacer.slot() as slot:
        assert slot.probe
        with pytest.raises(RateBudgetExhausted) as info:
            pacer.acquire(deadline=fake_time.now)
        assert info.value.retry_after == pytest.approx(pacer.probe_timeout)
    assert fake_time.sleeps == []


def test_a_lost_probe_stops_holding_the_others_after_the_probe_timeout(fake_time: FakeTime) -> None:
    pacer = make(fake_time, limit=300, window=300.0, probe_timeout=30.0)
    lost = pacer.slot()
    assert lost.__enter__().probe  # never answered, never ended
    fake_time.advance(30.0)
    with pacer.slot() as slot:
        assert slot.probe  # the lost probe no longer holds anyone; the budget is still unknown
