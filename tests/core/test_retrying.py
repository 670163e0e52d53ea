"""The one backoff-with-jitter rule (``syncd.retrying``), and that every caller draws from it."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import stamina

import syncd
from syncd.retrying import Backoff, backoff_delay

EXPONENTIAL = re.compile(r"\b2(\.0)?\s*\*\*")


def test_the_rule_is_exponential_from_initial_with_additive_jitter_and_a_hard_cap() -> None:
    rule = Backoff(initial=1.0, maximum=10.0, jitter=0.5)
    assert [rule.delay(n, rng=lambda: 0.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [rule.delay(n, rng=lambda: 1.0) for n in range(1, 6)] == [1.5, 2.5, 4.5, 8.5, 10.0]
    assert rule.nominal(3) == 4.0


def test_the_rule_is_stamina_s_so_a_stamina_loop_with_the_same_numbers_waits_alike() -> None:
    rule = Backoff(initial=0.25, maximum=3.0, jitter=0.75)
    draws = iter([0.3, 0.9, 0.1, 0.6, 0.0])
    ours = [rule.delay(n, rng=lambda: next(draws)) for n in range(1, 6)]
    # stamina's formula draws random.uniform(0, jitter): the same values from the same seed.
    random.seed(7)
    theirs = [stamina._core._compute_backoff(n, 3.0, 0.25, 2, 0.75) for n in range(1, 6)]
    random.seed(7)
    replay = [rule.delay(n, rng=random.random) for n in range(1, 6)]
    assert theirs == pytest.approx(replay)
    assert ours == pytest.approx([0.475, 1.175, 1.075, 2.45, 3.0])
    assert rule.stamina_arguments() == {"wait_initial": 0.25, "wait_max": 3.0, "wait_jitter": 0.75, "wait_exp_base": 2}


def test_a_huge_failure_count_stays_at_the_cap() -> None:
    assert backoff_delay(10_000, initial=0.5, maximum=30.0, jitter=1.0, rng=lambda: 1.0) == 30.0


def test_failures_at_maximum_is_the_first_count_that_reaches_the_cap() -> None:
    assert Backoff(1.0, 8.0, 1.0).failures_at_maximum() == 4
    assert Backoff(1.0, 6.0, 1.0).failures_at_maximum() == 4  # 1, 2, 4, then 8 capped to 6
    assert Backoff(5.0, 5.0, 0.0).failures_at_maximum() == 1


def test_a_wait_that_leaves_no_room_before_the_deadline_is_not_taken() -> None:
    rule = Backoff(1.0, 30.0, 0.0)
    assert rule.wait_within(2, now=100.0, deadline=103.0, reserve=0.5) == 2.0
    assert rule.wait_within(2, now=100.0, deadline=102.4, reserve=0.5) is None


@pytest.mark.parametrize(("initial", "maximum", "jitter"), [(0.0, 1.0, 0.0), (2.0, 1.0, 0.0), (1.0, 2.0, -1.0)])
def test_nonsense_numbers_are_refused(initial: float, maximum: float, jitter: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial, maximum, jitter)
    with pytest.raises(ValueError):
        backoff_delay(0, initial=1.0, maximum=1.0, jitter=0.0)


def test_exponential_backoff_is_written_once_in_syncd() -> None:
    """The Cloudflare and Vault retries, the token upkeep, the script backoff and the event
    subscriber's reconnects all call ``syncd.retrying``: no other module raises 2 to a power."""
    package = Path(syncd.__file__).parent
    written = [
        f"{source.relative_to(package)}:{number}"
        for source in sorted(package.rglob("*.py"))
        if source.name != "retrying.py" and "devstack" not in source.parts
        for number, line in enumerate(source.read_text().splitlines(), 1)
        if EXPONENTIAL.search(line.split("#")[0])
    ]
    assert written == []
