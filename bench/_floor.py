"""The floor: the least a client can do for the same version checks syncd makes.

``N`` KV v2 metadata reads (``GET /v1/secret/metadata/<path>`` with ``X-Vault-Token``), on
``concurrency`` threads that each keep one connection alive and pull paths from a shared iterator;
each answer is parsed as JSON and its ``current_version`` read. No retries, no error mapping, no
state, no logging: what is left is HTTP and JSON, which syncd cannot avoid either.

Variants: ``http.client`` (the stdlib, the real floor); one ``requests.Session`` with a pool sized to
the concurrency (the HTTP stack hvac sits on); urllib3 directly; hvac; a sync httpx client; and
syncd's own lean transport (``PooledHttp``) without the reader around it. ``bench/vault_clients.py``
prints them side by side with the syncd cycle.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import httpx
import hvac
import requests
import urllib3
from requests.adapters import HTTPAdapter

from syncd.clients.vault_http import PooledHttp

Check = Callable[[str], int]


def _run(paths: Sequence[str], concurrency: int, make_check: Callable[[], Check]) -> dict[str, int]:
    versions: dict[str, int] = {}
    lock = threading.Lock()
    remaining = iter(paths)
    errors: list[BaseException] = []

    def worker() -> None:
        check = make_check()
        try:
            while True:
                with lock:
                    path = next(remaining, None)
                if path is None:
                    return
                version = check(path)
                with lock:
                    versions[path] = version
        except BaseException as exc:  # surfaced below, on the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, name=f"floor-{i}") for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return versions


def raw_metadata_reads(vault_addr: str, token: str, paths: Sequence[str], concurrency: int) -> dict[str, int]:
    """``current_version`` per path, with stdlib ``http.client`` keep-alive connections."""
    parts = urlsplit(vault_addr)
    headers = {"X-Vault-Token": token}

    def make_check() -> Check:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)

        def check(path: str) -> int:
            conn.request("GET", f"/v1/secret/metadata/{path}", headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"metadata read of {path}: HTTP {response.status}")
            return int(json.loads(body)["data"]["current_version"])

        return check

    return _run(paths, concurrency, make_check)


def requests_metadata_reads(vault_addr: str, token: str, paths: Sequence[str], concurrency: int) -> dict[str, int]:
    """The same reads through one ``requests.Session`` (pool sized to ``concurrency``)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=concurrency, pool_maxsize=concurrency, max_retries=0)
    session.mount("http://", adapter)
    session.headers["X-Vault-Token"] = token
    base = vault_addr.rstrip("/")

    def make_check() -> Check:
        def check(path: str) -> int:
            response = session.get(f"{base}/v1/secret/metadata/{path}", timeout=30)
            if response.status_code != 200:
                raise RuntimeError(f"metadata read of {path}: HTTP {response.status_code}")
            return int(response.json()["data"]["current_version"])

        return check

    try:
        return _run(paths, concurrency, make_check)
    finally:
        session.close()


def urllib3_metadata_reads(vault_addr: str, token: str, paths: Sequence[str], concurrency: int) -> dict[str, int]:
    """The same reads through urllib3 directly: one ``HTTPConnectionPool`` sized to ``concurrency``."""
    parts = urlsplit(vault_addr)
    pool = urllib3.HTTPConnectionPool(
        parts.hostname or "127.0.0.1", parts.port or 80, maxsize=concurrency, timeout=30.0, retries=False
    )
    headers = {"X-Vault-Token": token}

    def make_check() -> Check:
        def check(path: str) -> int:
            response = pool.urlopen("GET", f"/v1/secret/metadata/{path}", headers=headers, redirect=False)
            if response.status != 200:
                raise RuntimeError(f"metadata read of {path}: HTTP {response.status}")
            return int(json.loads(response.data)["data"]["current_version"])

        return check

    try:
        return _run(paths, concurrency, make_check)
    finally:
        pool.close()


def hvac_metadata_reads(vault_addr: str, token: str, paths: Sequence[str], concurrency: int) -> dict[str, int]:
    """The same reads through hvac (``read_secret_metadata``) on a session built like syncd built
    it before the lean path: pool sized to ``concurrency``, proxies resolved once (``trust_env`` off)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=concurrency, pool_maxsize=concurrency, max_retries=0)
    session.mount("http://", adapter)
    session.trust_env = False
    client = hvac.Client(url=vault_addr, token=token, session=session, timeout=30)

    def make_check() -> Check:
        def check(path: str) -> int:
            meta = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")
            return int(meta["data"]["current_version"])

        return check

    try:
        return _run(paths, concurrency, make_check)
    finally:
        session.close()


def httpx_metadata_reads(vault_addr: str, token: str, paths: Sequence[str], concurrency: int) -> dict[str, int]:
    """The same reads through one sync ``httpx.Client`` (keep-alive pool sized to ``concurrency``)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.Client(
        base_url=vault_addr, headers={"X-Vault-Token": token}, limits=limits, timeout=30.0, trust_env=False
    )

    def make_check() -> Check:
        def check(path: str) -> int:
            response = client.get(f"/v1/secret/metadata/{path}")
            if response.status_code != 200:
                raise RuntimeError(f"metadata read of {path}: HTTP {response.status_code}")
            return int(json.loads(response.content)["data"]["current_version"])

        return check

    try:
        return _run(paths, concurrency, make_check)
    finally:
        client.close()


def pooled_metadata_reads(vault_addr: str, token: str, paths: Sequence[str], concurrency: int) -> dict[str, int]:
    """The same reads through syncd's lean transport (``PooledHttp``) alone, without the reader."""
    pool = PooledHttp(vault_addr, timeout=30.0, pool_size=concurrency)
    headers = {"X-Vault-Token": token}

    def make_check() -> Check:
        def check(path: str) -> int:
            reply = pool.get(f"/v1/secret/metadata/{path}", headers)
            if reply.status != 200:
                raise RuntimeError(f"metadata read of {path}: HTTP {reply.status}")
            return int(json.loads(reply.body)["data"]["current_version"])

        return check

    try:
        return _run(paths, concurrency, make_check)
    finally:
        pool.close()
