"""The layers keep to their places: imports point down (app -> engine -> clients), the engine builds
no transport, and within app, notify and leadership import nothing of the service."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path

import httpx

import syncd
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


TRANSPORTS = ("httpx", "hvac", "requests", "urllib3", "websockets", "socket", "ssl", "http.client", "kubernetes")
SYNCD = Path(syncd.__file__).parent


def imports_of(package: Path) -> Iterator[tuple[str, str]]:
    """``(file, imported module)`` for every import in the package's modules, nested ones included."""
    for source in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield str(source.relative_to(package.parent)), alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield str(source.relative_to(package.parent)), node.module


def crossing(package: Path, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{source} imports {name}"
        for source, name in imports_of(package)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


def test_no_imports_from_upper_layers() -> None:
    assert crossing(Path(syncd.clients.__file__).parent, FORBIDDEN) == []


def test_the_engine_imports_no_client_no_transport_and_nothing_above_it() -> None:
    """The engine receives its ports (the Vault reader, the Cloudflare client, the state Secrets API)
    from the app's wiring: it builds no client and no transport."""
    assert crossing(SYNCD / "engine", ("syncd.clients", "syncd.app", "syncd.devstack", *TRANSPORTS)) == []


def test_notify_and_leadership_import_nothing_of_the_service() -> None:
    for floor in ("notify", "leadership"):
        assert crossing(SYNCD / "app" / floor, ("syncd.app.service", "syncd.app.cli")) == []


def test_the_crossing_check_sees_nested_and_dotted_imports_only(tmp_path: Path) -> None:
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "m.py").write_text(
        "import httpxlike\n\ndef f() -> None:\n"
        "    import httpx.transports\n    from syncd.clients.vault import VaultReader\n"
    )
    assert crossing(tmp_path / "engine", ("syncd.clients", "httpx")) == [
        "engine/m.py imports httpx.transports",
        "engine/m.py imports syncd.clients.vault",
    ]
