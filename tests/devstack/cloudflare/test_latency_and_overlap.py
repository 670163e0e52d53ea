"""Write latency, the concurrent-edit 429 and the request log's start/end times.

No absolute durations are asserted: concurrency is shown by the emulator's own count of writes in
flight, reached while both writes are held by the latency (changing the latency ends a held
write's sleep, so nothing waits 30 s), and order by the logged intervals.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from syncd.devstack.cloudflare import CloudflareEmulator
from syncd.devstack.cloudflare.edits import LatencySpec, WriteLatency
from tests.devstack.cloudflare.helpers import SCRIPT, script_path, text_secret
from tests.waiting import wait_until

DEADLINE_SECONDS = 10.0
HELD = "30"  # a write sleeps this long unless the test changes the latency, which ends the sleep at once


def wait_for(condition: Callable[[], bool]) -> None:
    assert wait_until(condition, DEADLINE_SECONDS, interval=0.005), "condition not reached before the deadline"


class Background:
    """Writes sent from threads, their answers collected."""

    def __init__(self, cf: CloudflareEmulator) -> None:
        self.cf = cf
        self.statuses: list[int] = []
        self.threads: list[threading.Thread] = []

    def put(self, script: str, name: str) -> None:
        def send() -> None:
            headers = {"Authorization": f"Bearer {self.cf.api_token}"}
            url = self.cf.api_base + script_path(self.cf, script) + "/secrets"
            self.statuses.append(httpx.put(url, json=text_secret(name, "x"), headers=headers, timeout=60).status_code)

        thread = threading.Thread(target=send)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=DEADLINE_SECONDS)


@pytest.fixture
def background(cf: CloudflareEmulator) -> Iterator[Background]:
    writes = Background(cf)
    yield writes
    cf.set_write_latency("off")
    writes.join()


def test_a_second_write_to_a_script_with_a_write_in_flight_is_429(
    cf: CloudflareEmulator, http: httpx.Client, background: Background
) -> None:
    cf.set_write_latency(HELD)
    background.put(SCRIPT, "FIRST")
    wait_for(lambda: cf.edit_stats()["in_flight"] == 1)

    second = http.put(script_path(cf) + "/secrets", json=text_secret("SECOND", "y"))
    cf.set_write_latency("off")  # ends the first write's sleep
    background.join()

    assert second.status_code == 429
    assert second.json()["success"] is False
    assert second.json()["errors"] == [
        {"code": cf.config.concurrent_edit_code, "message": cf.config.concurrent_edit_message}
    ]
    assert "Ratelimit" in second.headers
    assert background.statuses == [200]
    assert set(cf.secrets_of(SCRIPT)) == {"FIRST"}
    assert cf.edit_stats()["concurrent_edit_429s"] == 1


def test_writes_to_different_scripts_are_in_flight_together(
    cf: CloudflareEmulator, http: httpx.Client, background: Background
) -> None:
    cf.create_script("other")
    cf.set_write_latency(HELD)
    background.put(SCRIPT, "A")
    background.put("other", "B")

    wait_for(lambda: cf.edit_stats()["in_flight"] == 2)
    read_meanwhile = http.get(script_path(cf) + "/secrets")
    cf.set_write_latency("off")
    background.join()

    assert read_meanwhile.status_code == 200  # reads are never held by a write
    assert sorted(background.statuses) == [200, 200]
    assert cf.edit_stats()["concurrent_edit_429s"] == 0


def test_the_request_log_has_start_and_end_and_sequential_writes_never_overlap(
    cf: CloudflareEmulator, http: httpx.Client, admin: httpx.Client
) -> None:
    admin.post("/latency", json={"kind": "fixed", "a": 0.01}).raise_for_status()
    for n in range(5):
        http.put(script_path(cf) + "/secrets", json=text_secret(f"S{n}", "x")).raise_for_status()

    entries = admin.get("/requests").json()["requests"]
    writes = [e for e in entries if e["method"] == "PUT"]

    assert len(writes) == 5
    assert all(e["start"] <= e["end"] == e["time"] for e in entries)
    assert all(earlier["end"] <= later["start"] for earlier, later in itertools.pairwise(writes))


def test_latency_is_set_and_read_through_the_admin_api(cf: CloudflareEmulator, admin: httpx.Client) -> None:
    set_by_spec = admin.post("/latency", json={"spec": "lognormal:1.0,0.25@42"})
    bad = admin.post("/latency", json={"spec": "uniform:2,1"})
    stats = admin.get("/edits").json()

    assert set_by_spec.json() == {"kind": "lognormal", "a": 1.0, "b": 0.25, "seed": 42}
    assert admin.get("/latency").json() == set_by_spec.json()
    assert bad.status_code == 400 and "LOW <= HIGH" in bad.json()["error"]
    assert stats == {"in_flight": 0, "concurrent_edit_429s": 0, "writes": 0}
    assert cf.write_latency.spec == LatencySpec("lognormal", 1.0, 0.25, 42)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("off", LatencySpec()),
        ("0", LatencySpec()),
        ("1.5", LatencySpec("fixed", 1.5)),
        ("uniform:0.5,1.5", LatencySpec("uniform", 0.5, 1.5)),
        ("lognormal:1,0.3@7", LatencySpec("lognormal", 1.0, 0.3, 7)),
    ],
)
def test_latency_specs_parse(text: str, expected: LatencySpec) -> None:
    assert LatencySpec.parse(text) == expected


@pytest.mark.parametrize("text", ["fast", "-1", "uniform:2,1", "lognormal:0,1", "uniform:a,b", "normal:1,1", "1@x"])
def test_bad_latency_specs_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="latency"):
        LatencySpec.parse(text)


def test_seeded_distributions_repeat_and_stay_in_range() -> None:
    first = WriteLatency(LatencySpec.parse("uniform:0.5,1.5@11"))
    second = WriteLatency(LatencySpec.parse("uniform:0.5,1.5@11"))
    lognormal = WriteLatency(LatencySpec.parse("lognormal:1.0,0.5@11"))

    draws = [first.draw() for _ in range(200)]

    assert draws == [second.draw() for _ in range(200)]
    assert all(0.5 <= d <= 1.5 for d in draws)
    assert all(d > 0 for d in (lognormal.draw() for _ in range(200)))
    assert WriteLatency().draw() == 0.0
