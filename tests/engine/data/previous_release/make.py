"""Writes the state fixtures of this folder with a *released* syncd (not the checkout under test).

Run from a checkout of the release whose state the upgrade tests start from, e.g. 0.1.0 at ada800a::

    git archive ada800a | tar -x -C /tmp/syncd-0.1.0
    PYTHONPATH=/tmp/syncd-0.1.0 python tests/engine/data/previous_release/make.py OUT_DIR

It runs one real cycle (that release's Reconciler, VaultReader and CloudflareClient against its own
devstack) over the world that ``WORLD`` describes, marks one mapping staged the way that release
recorded it (``Staged(N)``), and writes ``state.sqlite3`` plus ``chunk.json.gz`` (the same records as
the ``kubernetes`` backend stores them in one Secret). The values are throwaway canaries.
"""

# ruff: noqa: PLC0415 - syncd is imported inside main(): the tests import this module for WORLD and
# the config only, and must not depend on the old release's API.
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ACCOUNT = "0123456789abcdef0123456789abcdef"
SCRIPTS = ("edge", "billing")
HMAC_KEY_B64 = "c3luY2QtdXBncmFkZS1maXh0dXJlLWhtYWMta2V5IQ=="  # 32 bytes of text, nothing secret
# Vault path -> the versions written in order (the last is current).
WORLD: dict[str, list[dict[str, str]]] = {
    "app/api": [{"api_key": "UPGRADE-CANARY-api-v1", "other": "UPGRADE-CANARY-other-v1"},
                {"api_key": "UPGRADE-CANARY-api-v2", "other": "UPGRADE-CANARY-other-v2"}],
    "app/signing": [{"hmac": HMAC_KEY_B64}],
    "app/cfg": [{"region": "UPGRADE-CANARY-eu", "level": "UPGRADE-CANARY-3"}],
}
STAGED_MAPPING, STAGED_VERSION = "cfg", 4
MAPPINGS: list[dict[str, Any]] = [
    {
        "name": "api",
        "vault": {"mount": "secret", "path": "app/api"},
        "target": {"script": "edge"},
        "secret_text": {"keys": {"api_key": "API_KEY", "other": "OTHER"}},
    },
    {
        "name": "signing",
        "vault": {"mount": "secret", "path": "app/signing", "kv_version": 2},
        "target": {"script": "edge"},
        "secret_key": [
            {
                "vault_key": "hmac",
                "binding": "SIGNING",
                "format": "raw",
                "algorithm": {"name": "HMAC", "hash": "SHA-256"},
                "usages": ["sign", "verify"],
            }
        ],
    },
    {
        "name": "cfg",
        "vault": {"mount": "secret", "path": "app/cfg"},
        "target": {"script": "billing"},
        "secret_text": {"json_binding": "CONFIG"},
    },
]


def settings_document() -> dict[str, Any]:
    return {
        "vault": {"address": "http://vault.invalid"},
        "cloudflare": {"account_id": ACCOUNT, "auth": {"api_token": {"env": "CF_TOKEN"}}},
        "mapping": MAPPINGS,
    }


def main(out: Path) -> None:
    import hvac

    from syncd.clients.cloudflare import ApiTokenAuth, CloudflareClient
    from syncd.clients.pacer import Pacer
    from syncd.clients.vault import VaultReader, build_hvac_client
    from syncd.config import Settings
    from syncd.devstack.stack import Devstack
    from syncd.engine.reconciler import Reconciler
    from syncd.engine.state import StateStore
    from syncd.engine.state.chunks import encode
    from syncd.model import SecretValue

    work = Path(tempfile.mkdtemp())
    with Devstack() as devstack:
        devstack.wait_until_ready()
        devstack.cloudflare.store.create_account(ACCOUNT)
        for script in SCRIPTS:
            devstack.cloudflare.store.create_script(ACCOUNT, script)
        admin = hvac.Client(url=devstack.vault.url, token=devstack.vault.root_token)
        for path, versions in WORLD.items():
            for data in versions:
                admin.secrets.kv.v2.create_or_update_secret(path, data, mount_point="secret")
        settings = Settings.model_validate(settings_document())
        hvac_client = build_hvac_client(
            devstack.vault.url, namespace=None, timeout=5.0, verify=True, client_cert=None, pool_size=4
        )
        hvac_client.token = devstack.vault.root_token
        cloudflare = CloudflareClient(
            devstack.cloudflare.api_base,
            ApiTokenAuth(lambda: SecretValue(devstack.cloudflare.api_token)),
            pacer=Pacer(1200, 300.0),
            timeout=5.0,
        )
        state = StateStore.open(work / "state.sqlite3")
        report = Reconciler(settings, VaultReader(hvac_client), cloudflare, state).reconcile(trigger="once")  # type: ignore[arg-type]  # 0.1.0 takes a str
        assert report.ok, [(r.mapping, r.error_code) for r in report.results]
        status = state.mapping_status(STAGED_MAPPING)
        assert status is not None
        state.record_mapping_result(
            STAGED_MAPPING,
            at=status.last_attempt_at or 0.0,
            config_fingerprint=status.config_fingerprint,
            version=status.last_version,
            in_sync=False,
            pushed=True,
            error_code=f"Staged({STAGED_VERSION})",
            error=f"staged in version {STAGED_VERSION}, not deployed",
        )
        state.close()
    with StateStore.open(work / "state.sqlite3") as reopened:
        (out / "chunk.json.gz").write_bytes(encode(reopened.bindings(), reopened.all_mapping_status()))
        (out / "hmac_key.bin").write_bytes(reopened.hmac_key)
    shutil.copy(work / "state.sqlite3", out / "state.sqlite3")
    shutil.rmtree(work)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
