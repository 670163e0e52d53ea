"""32 threads writing at once lose no KV v2 version and no KV v1 write."""

from __future__ import annotations

import threading

import httpx

from syncd.devstack.vault import VaultEmulator

THREADS = 32
WRITES_PER_THREAD = 8


def test_concurrent_writes_to_shared_and_private_paths_lose_nothing(vault: VaultEmulator) -> None:
    barrier = threading.Barrier(THREADS)
    errors: list[str] = []

    def writer(index: int) -> None:
        headers = {"X-Vault-Token": vault.root_token}
        with httpx.Client(base_url=vault.url, headers=headers, timeout=30) as client:
            barrier.wait()
            for number in range(WRITES_PER_THREAD):
                for path in ("/v1/secret/data/shared", f"/v1/secret/data/own/{index}"):
                    response = client.post(path, json={"data": {"writer": str(index), "n": str(number)}})
                    if response.status_code != 200:
                        errors.append(f"{path}: {response.status_code}")
                response = client.post(f"/v1/kv/own/{index}-{number}", json={"v": str(number)})
                if response.status_code != 204:
                    errors.append(f"kv: {response.status_code}")

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    with httpx.Client(base_url=vault.url, headers={"X-Vault-Token": vault.root_token}) as client:
        shared = client.get("/v1/secret/metadata/shared").json()["data"]
        assert shared["current_version"] == THREADS * WRITES_PER_THREAD
        assert len(shared["versions"]) == 10
        for index in range(THREADS):
            own = client.get(f"/v1/secret/metadata/own/{index}").json()["data"]
            assert own["current_version"] == WRITES_PER_THREAD
        listed = client.request("LIST", "/v1/kv/own").json()["data"]["keys"]
        assert len(listed) == THREADS * WRITES_PER_THREAD
