"""32 threads writing at once lose no write and count every version.

Two writes to one script that overlap are answered 429 (the concurrent-edit refusal): writers here
retry those at once, and every other write is kept. Writes to different scripts never interfere.
"""

from __future__ import annotations

import threading

import httpx

from syncd.devstack.cloudflare import CloudflareEmulator
from tests.devstack.cloudflare.helpers import SCRIPT, script_path, text_secret

THREADS = 32
WRITES_PER_THREAD = 4  # 32 x 4 = 128 secrets, exactly the variable limit
MAX_ATTEMPTS = 5000


def test_parallel_single_and_bulk_writes_are_all_kept(cf: CloudflareEmulator) -> None:
    url = cf.api_base + script_path(cf)
    headers = {"Authorization": f"Bearer {cf.api_token}"}
    start = threading.Barrier(THREADS)
    failures: list[str] = []
    refused: list[int] = []

    def writer(index: int) -> None:
        with httpx.Client(headers=headers, timeout=10.0) as client:
            start.wait()
            try:
                write_all(client, index)
            except httpx.HTTPError as exc:  # a reset connection is a lost write too
                failures.append(f"thread {index}: {exc!r}")

    def write_one(client: httpx.Client, index: int, n: int) -> httpx.Response:
        name = f"T{index}_{n}"
        if index % 2:
            return client.put(url + "/secrets", json=text_secret(name, f"v{index}.{n}"))
        return client.patch(url + "/secrets-bulk", json={"secrets": {name: text_secret(name, f"v{index}.{n}")}})

    def write_all(client: httpx.Client, index: int) -> None:
        for n in range(WRITES_PER_THREAD):
            for _ in range(MAX_ATTEMPTS):
                response = write_one(client, index, n)
                if response.status_code != 429:
                    break
                refused.append(response.json()["errors"][0]["code"])
            if response.status_code != 200:
                failures.append(f"T{index}_{n}: {response.status_code} {response.text}")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    expected = {f"T{i}_{n}": f"v{i}.{n}" for i in range(THREADS) for n in range(WRITES_PER_THREAD)}
    assert failures == []
    assert {name: body["text"] for name, body in cf.secrets_of(SCRIPT).items()} == expected
    assert cf.versions_of(SCRIPT) == 1 + THREADS * WRITES_PER_THREAD
    assert set(refused) <= {cf.config.concurrent_edit_code}
    assert cf.edit_stats()["concurrent_edit_429s"] == len(refused)
    assert cf.edit_stats()["in_flight"] == 0


def test_parallel_deletes_each_succeed_once(cf: CloudflareEmulator, http: httpx.Client) -> None:
    http.patch(
        script_path(cf) + "/secrets-bulk",
        json={"secrets": {f"D{i}": text_secret(f"D{i}", "x") for i in range(THREADS)}},
    ).raise_for_status()
    url = cf.api_base + script_path(cf) + "/secrets/D0"
    headers = {"Authorization": f"Bearer {cf.api_token}"}
    start = threading.Barrier(THREADS)
    statuses: list[int] = []
    lock = threading.Lock()

    def deleter() -> None:
        start.wait()
        status = httpx.delete(url, headers=headers, timeout=10.0).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=deleter) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert statuses.count(200) == 1
    assert set(statuses) <= {200, 404, 429}  # 429: another delete of the script was in flight
    assert cf.versions_of(SCRIPT) == 3


def test_writes_to_different_scripts_never_refuse_each_other(cf: CloudflareEmulator) -> None:
    scripts = [f"parallel-{i}" for i in range(THREADS)]
    for name in scripts:
        cf.create_script(name)
    headers = {"Authorization": f"Bearer {cf.api_token}"}
    start = threading.Barrier(THREADS)
    statuses: list[int] = []
    lock = threading.Lock()

    def writer(script: str) -> None:
        url = cf.api_base + script_path(cf, script) + "/secrets"
        with httpx.Client(headers=headers, timeout=10.0) as client:
            start.wait()
            for n in range(WRITES_PER_THREAD):
                status = client.put(url, json=text_secret(f"S{n}", "x")).status_code
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=writer, args=(name,)) for name in scripts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert statuses == [200] * THREADS * WRITES_PER_THREAD
    assert cf.edit_stats()["concurrent_edit_429s"] == 0
