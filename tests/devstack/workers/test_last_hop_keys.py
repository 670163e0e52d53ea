"""The last hop for keys: Vault holds the material, the real syncd syncs it, the Worker uses it.

For every ``secret_key`` format and encoding syncd accepts (raw as base64 and hex; pkcs8 and spki as
PEM, base64 and hex; jwk) and the common algorithms (HMAC SHA-256, AES-GCM, RSASSA-PKCS1-v1_5,
RSA-PSS, RSA-OAEP, ECDSA P-256, Ed25519): the devstack's Vault holds the key, the Reconciler with
the real Vault and Cloudflare clients writes the binding, workerd imports it as a ``cryptoKey``
binding with the format, algorithm and usages syncd sent, the default Worker uses it over a fixed
message, and ``cryptography`` checks the result against the material read back from Vault. A wrong
conversion anywhere on the way (PEM to DER, hex, JWK, DER back to PEM for workerd) fails here.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from syncd.devstack.stack import Devstack
from syncd.engine.report import Trigger
from tests.devstack.workers.conftest import Worker, require_workerd
from tests.devstack.workers.keycases import KeyCase, cases_by_id
from tests.engine.test_reconciler_devstack import Stack

pytestmark = pytest.mark.integration

CASE_IDS = [
    "hmac_raw_base64",
    "hmac_raw_hex",
    "aes_gcm_raw_base64",
    "rsassa_pkcs8_pem",
    "rsa_pss_pkcs8_base64",
    "ecdsa_pkcs8_hex",
    "ed25519_pkcs8_pem",
    "rsa_oaep_spki_pem",
    "ecdsa_spki_base64",
    "rsassa_spki_hex",
    "ed25519_spki_pem",
    "hmac_jwk",
    "aes_gcm_jwk",
    "ecdsa_jwk_private",
    "ed25519_jwk_private",
    "rsa_oaep_jwk_public",
]


class Synced:
    def __init__(self, stack: Stack, worker: Worker) -> None:
        self.stack = stack
        self.worker = worker

    def vault_text(self, case: KeyCase) -> str:
        read = self.stack.vault_admin.secrets.kv.v2.read_secret_version(
            f"keys/{case.id}", mount_point="secret", raise_on_deleted_version=True
        )
        return str(read["data"]["data"]["material"])

    def report(self, case: KeyCase, signature: bytes | None = None) -> dict[str, Any]:
        params = {"input": base64.b64encode(signature).decode()} if signature is not None else {}
        binding: dict[str, Any] = self.worker.report(case.script, **params)["bindings"]["KEY"]
        return binding


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    require_workerd()
    cases = cases_by_id()
    assert sorted(cases) == sorted(CASE_IDS)
    scripts = [case.script for case in cases.values()]
    with Devstack(scripts=scripts, workers="on") as devstack:
        devstack.wait_until_ready()
        stack = Stack(devstack, tmp_path_factory.mktemp("keys") / "state.sqlite3")
        try:
            mappings = []
            for case in cases.values():
                stack.put(f"keys/{case.id}", {"material": case.vault_value})
                mappings.append(
                    {
                        "name": case.id,
                        "vault": {"mount": "secret", "path": f"keys/{case.id}"},
                        "target": {"script": case.script},
                        "secret_key": [case.mapping_key()],
                    }
                )
            report = stack.reconciler(stack.settings(*mappings)).reconcile(trigger=Trigger.STARTUP)
            assert report.ok, [(r.mapping, r.error) for r in report.results if r.failed]
            assert devstack.workers is not None and devstack.workers.wait_settled()
            yield Synced(stack, Worker(devstack.workers.url))
        finally:
            stack.state.close()
            stack.cloudflare.close()


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_the_worker_uses_the_key_syncd_synced_and_cryptography_checks_it_against_vault(
    synced: Synced, case_id: str
) -> None:
    case = cases_by_id()[case_id]

    report = synced.report(case, case.input)

    assert report["type"] == "secret_key"
    assert report["usages"] == case.usages
    assert report["algorithm"]["name"] == case.algorithm["name"]
    assert report["extractable"] is False
    case.check(report, synced.vault_text(case))


@pytest.mark.parametrize("case_id", ["ecdsa_spki_base64", "rsassa_spki_hex", "ed25519_spki_pem"])
def test_a_tampered_signature_does_not_verify_in_the_worker(synced: Synced, case_id: str) -> None:
    case = cases_by_id()[case_id]
    assert case.input is not None
    tampered = bytes([case.input[0] ^ 1]) + case.input[1:]

    assert synced.report(case, tampered)["verified"] is False


def test_no_key_material_appears_in_any_worker_response(synced: Synced) -> None:
    for case in cases_by_id().values():
        answer = synced.worker.get(case.script).text
        text = synced.vault_text(case)
        fragments = [text.strip()[40:80], *[line for line in text.splitlines() if len(line) > 40][:1]]
        assert not any(fragment and fragment in answer for fragment in fragments), case.id
