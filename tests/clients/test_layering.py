"""The clients layer keeps to its place: protocols satisfied, no upward imports."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import httpx

import syncd.clients
from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
from syncd.clients.pacer import Pacer
from syncd.clients.vault import VaultReader
from syncd.engine.ports import SecretSource, WorkerSecrets
from syncd.model import SecretValue
from tests.clients.fakevault import FakeVault, hvac_client

FORBIDDEN = ("syncd.config", "syncd.app", "syncd.devstack", "syncd.engine")


def test_clients_satisfy_the_engine_ports() -> None:
    reader: SecretSource = VaultReader(hvac_client(FakeVault()))  # checked by mypy, and below
    cloudflare: WorkerSecrets = CloudflareClient(
        "http://cf.test/client/v4",
        ApiTokenAuth(lambda: SecretValue("t")),
        pacer=Pacer(),
        transport=httpx.MockTransport(lambda r: httpx.Response(200)),
    )
    for impl, port in ((reader, SecretSource), (cloudflare, WorkerSecrets)):
        for name, member in inspect.getmembers(port, inspect.isfunction):
            if name.startswith("_"):
                continue
            wanted = list(inspect.signature(member).parameters)[1:]
            assert list(inspect.signature(getattr(impl, name)).parameters) == wanted, name


def test_no_imports_from_upper_layers() -> None:
    package = Path(syncd.clients.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{source.name} imports {name}"
