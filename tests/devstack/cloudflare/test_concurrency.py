"""32 threads writing at once lose no write and count every version."""

from __future__ import annotations

import threading

import httpx

from syncd.devstack.cloudflare import CloudflareEmulator
from tests.devstack.cloudflare.helpers import SCRIPT, script_path, text_secret

THREADS = 32
WRITES_PER_THREAD = 4  # 32 x 4 = 128 secrets, exactly the variable limit


def test_parallel_single_and_bulk_writes_are_all_kept(cf: CloudflareEmulator) -> None:
    url = cf.api_base + script_path(cf)
    headers = {"Authorization": f"Bearer {cf.api_token}"}
    start = threading.Barrier(THREADS)
    failures: list[str] = []

    def writer(index: int) -> None:
        with httpx.Client(headers=headers, timeout=10.0) as client:
            start.wait()
            try:
                write_all(client, index)
            except httpx.HTTPError as exc:  # a reset connection is a lost write too
                failures.append(f"thread {index}: {exc!r}")

    def write_all(client: httpx.Client, index: int) -> None:
        for n in range(WRITES_PER_THREAD):
            name = f"T{index}_{n}"
            if index % 2:
                response = client.put(url + "/secrets", json=text_secret(name, f"v{index}.{n}"))
            else:
                response = client.patch(
                    url + "/secrets-bulk", json={"secrets": {name: text_secret(name, f"v{index}.{n}")}}
                )
            if response.status_code != 200:
                failures.append(f"{name}: {response.status_code} {response.text}")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    expected = {f"T{i}_{n}": f"v{i}.{n}" for i in range(THREADS) for n in range(WRITES_PER_THREAD)}
    assert failures == []
    assert {name: body["text"] for name, body in cf.secrets_of(SCRIPT).items()} == expected
    assert cf.versions_of(SCRIPT) == 1 + THREADS * WRITES_PER_THREAD


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

    assert sorted(statuses) == [200] + [404] * (THREADS - 1)
    assert cf.versions_of(SCRIPT) == 3
