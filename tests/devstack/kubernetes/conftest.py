"""Fixtures: a fresh Kubernetes emulator per test, the official client and raw httpx pointed at it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client

from syncd.devstack.kubernetes import KubernetesEmulator

NAMESPACE = "syncd"


@pytest.fixture
def kube() -> Iterator[KubernetesEmulator]:
    emulator = KubernetesEmulator(namespace=NAMESPACE).start()
    yield emulator
    threading.Thread(target=emulator.stop, name="stop-emulator", daemon=True).start()


def official_client(kube: KubernetesEmulator, token: str) -> client.ApiClient:
    configuration = client.Configuration(
        host=kube.url, api_key={"BearerToken": token}, api_key_prefix={"BearerToken": "Bearer"}, retries=0
    )
    return client.ApiClient(configuration)


@pytest.fixture
def api_client(kube: KubernetesEmulator) -> Iterator[client.ApiClient]:
    with official_client(kube, kube.token) as api:
        yield api


@pytest.fixture
def leases(api_client: client.ApiClient) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(api_client)


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def http(kube: KubernetesEmulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {kube.token}"}
    with httpx.Client(base_url=kube.url, headers=headers, timeout=5.0) as raw:
        yield raw
