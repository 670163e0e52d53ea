"""What is deployed, as one workerd config: a router service and one Worker per deployed version.

:func:`snapshot` reads the Cloudflare emulator's store (under its lock) into :class:`ServedScript`
records: every script of every account with a deployment, and the versions that deployment
splits traffic between (dispatch-namespace scripts are left out: nothing routes to them without
a dispatcher Worker). :func:`render` turns them into the text of a Cap'n Proto config
(``workerd serve``), the module files it embeds and a fingerprint, following workerd's schema
(``src/workerd/server/workerd.capnp`` in cloudflare/workerd: ``Config``, ``Service``, ``Worker``,
``Worker.Module``, ``Worker.Binding``, ``ExternalServer``, ``Network``).

Each version's Worker gets its bindings as workerd binding types: ``plain_text`` and
``secret_text`` as ``text``, ``secret_key`` as ``cryptoKey`` (``keys``); ``secrets_store_secret``
and ``version_metadata`` are made by the entry module (``js``). Its outbound ``fetch`` may reach
loopback only. A compatibility date later than the runtime's own is lowered to the runtime's
(workerd refuses dates it does not know yet). Code that is not an ES module Worker (the old
service-worker format) answers 501 saying so. The config holds secret values: it is written to a
directory only this user can read, removed when the runtime stops.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from syncd.devstack.cloudflare.store import WorkerStore
from syncd.devstack.cloudflare.versions import Version
from syncd.devstack.workers import default_worker, js
from syncd.devstack.workers.capnp import text
from syncd.devstack.workers.keys import crypto_key_binding

ENTRY_MODULE = "__devstack_entry.js"
ROUTER_SERVICE = "router"
RUNTIME_SERVICE = "devstack-runtime"
LOOPBACK_SERVICE = "loopback"
HTTP_SOCKET = "http"
ENTRY_BINDING_TYPES = ("secrets_store_secret", "version_metadata")


@dataclass(frozen=True)
class ServedScript:
    account: str
    name: str
    split: tuple[tuple[Version, float], ...]


@dataclass
class RenderedConfig:
    text: str
    files: dict[str, bytes] = field(default_factory=dict)  # path relative to the config -> content
    scripts: int = 0
    versions: int = 0

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.text.encode())
        for path in sorted(self.files):
            digest.update(path.encode())
        return digest.hexdigest()


def snapshot(store: WorkerStore) -> list[ServedScript]:
    with store.lock:
        served: list[ServedScript] = []
        for account in store.accounts.values():
            for script in account.scripts.values():
                deployment = script.deployment
                if deployment is None:
                    continue
                split = tuple((script.version(vid), pct) for vid, pct in deployment.split if pct > 0)
                served.append(ServedScript(account.account_id, script.name, split))
        return served


class _Renderer:
    def __init__(self, max_compatibility_date: str) -> None:
        self.max_date = max_compatibility_date
        self.files: dict[str, bytes] = {}

    def file(self, content: bytes, suffix: str) -> str:
        path = f"modules/{hashlib.sha256(content).hexdigest()}{suffix}"
        self.files[path] = content
        return path

    def module(self, name: str, kind: str, content: bytes) -> str:
        return f"(name = {text(name)}, {kind} = embed {text(self.file(content, '.bin'))})"

    def worker(self, served: ServedScript, version: Version) -> str:
        code = version.code
        meta_bindings = [{"name": n, "type": "plain_text"} for n in version.plain_text]
        meta_bindings += [{"name": n, "type": s["type"]} for n, s in version.secrets.items()]
        meta_bindings += [{"name": n, "type": str(b.get("type"))} for n, b in version.other_bindings.items()]
        meta = {
            "script": served.name,
            "account": served.account,
            "version": {
                "id": version.id,
                "number": version.number,
                "tag": version.annotations.get("workers/tag"),
                "created_on": version.created_on,
            },
            "bindings": meta_bindings,
            "extra": [b for b in version.other_bindings.values() if b.get("type") in ENTRY_BINDING_TYPES],
        }
        if code is None:
            main, modules = (
                default_worker.MODULE_NAME,
                [self.module(default_worker.MODULE_NAME, "esModule", default_worker.SOURCE.encode())],
            )
        elif code.service_worker or code.main.kind != "esModule":
            reason = "the devstack's Workers runtime runs ES module Workers only (main_module), not this upload"
            main = "unsupported.js"
            modules = [self.module(main, "esModule", js.unsupported_source(reason).encode())]
        else:
            main, modules = code.main_module, [self.module(m.name, m.kind, m.content) for m in code.modules]
        entry = self.module(ENTRY_MODULE, "esModule", js.entry_source(main, meta).encode())
        date = version.compatibility_date
        flags = list(code.compatibility_flags) if code is not None else []
        bindings = [f"(name = {text(n)}, text = {text(v)})" for n, v in version.plain_text.items()]
        for name, secret in version.secrets.items():
            if secret["type"] == "secret_text":
                bindings.append(f"(name = {text(name)}, text = {text(secret['text'])})")
            else:
                bindings.append(f"(name = {text(name)}, {crypto_key_binding(secret)})")
        bindings.append(f"(name = {text(js.BRIDGE_BINDING)}, service = {text(RUNTIME_SERVICE)})")
        return (
            f"(modules = [{', '.join([entry, *modules])}], "
            f"compatibilityDate = {text(min(date, self.max_date))}, "
            f"compatibilityFlags = [{', '.join(text(f) for f in flags)}], "
            f"bindings = [{', '.join(bindings)}], globalOutbound = {text(LOOPBACK_SERVICE)})"
        )


def render(
    served: list[ServedScript], *, default_account: str, runtime_port: int, max_compatibility_date: str
) -> RenderedConfig:
    renderer = _Renderer(max_compatibility_date)
    services: list[str] = []
    router_bindings = [f"(name = {text(js.STATUS_BINDING)}, service = {text(RUNTIME_SERVICE)})"]
    table: dict[str, Any] = {"default_account": default_account, "scripts": {}, "by_name": {}}
    index_of: dict[str, str] = {}
    for script in served:
        entries = []
        for version, percentage in script.split:
            service = index_of.get(version.id)
            if service is None:
                service = index_of[version.id] = f"v{len(index_of)}"
                services.append(f"(name = {text(service)}, worker = {renderer.worker(script, version)})")
                router_bindings.append(f"(name = {text(service)}, service = {text(service)})")
            entries.append([service, percentage, version.id])
        key = f"{script.account}/{script.name}"
        table["scripts"][key] = entries
        table["by_name"].setdefault(script.name, key)
    router_module = renderer.module("router.js", "esModule", js.router_source(table).encode())
    services.append(
        f"(name = {text(ROUTER_SERVICE)}, worker = (modules = [{router_module}], "
        f'compatibilityDate = "2025-01-01", bindings = [{", ".join(router_bindings)}]))'
    )
    runtime_address = text(f"127.0.0.1:{runtime_port}")
    services.append(f"(name = {text(RUNTIME_SERVICE)}, external = (address = {runtime_address}, http = ()))")
    services.append(f'(name = {text(LOOPBACK_SERVICE)}, network = (allow = ["127.0.0.0/8", "::1/128"], deny = []))')
    config = (
        'using Workerd = import "/workerd/workerd.capnp";\n'
        "const config :Workerd.Config = (\n"
        f"  services = [\n    {(',' + chr(10) + '    ').join(services)}\n  ],\n"
        f"  sockets = [(name = {text(HTTP_SOCKET)}, address = {text('127.0.0.1:0')}, http = (), "
        f"service = {text(ROUTER_SERVICE)})],\n"
        ");\n"
    )
    return RenderedConfig(config, renderer.files, len(served), len(index_of))


def describe_plan(served: list[ServedScript]) -> dict[str, Any]:
    """What the runtime serves, without values: script -> [(version id, number, percentage)]."""
    return {
        f"{s.account}/{s.name}": [
            {"version_id": v.id, "number": v.number, "percentage": pct, "code": "uploaded" if v.code else "default"}
            for v, pct in s.split
        ]
        for s in served
    }
