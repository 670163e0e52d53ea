"""Script uploads keep their code and their bindings; the services route wrangler reads first.

(The whole flow with the real wrangler is in ``tests/devstack/workers/test_wrangler_flow.py``.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncd.devstack.cloudflare import CloudflareEmulator

pytestmark = pytest.mark.integration

CANARY = "canary-script-code-6b2e"


@pytest.fixture
def cf() -> Iterator[CloudflareEmulator]:
    with CloudflareEmulator() as emulator:
        yield emulator


def upload(
    cf: CloudflareEmulator, script: str, metadata: dict[str, Any], code: str = "export default {};"
) -> httpx.Response:
    files = {
        "metadata": (None, json.dumps({"main_module": "index.js", **metadata}), "application/json"),
        "index.js": ("index.js", code, "application/javascript+module"),
        "data.txt": ("data.txt", "some text", "text/plain"),
    }
    url = f"{cf.api_base}/accounts/{cf.account_id}/workers/scripts/{script}"
    return httpx.put(url, files=files, headers={"Authorization": f"Bearer {cf.api_token}"}, timeout=10)


def test_an_upload_keeps_its_modules_main_first_and_compatibility_settings(cf: CloudflareEmulator) -> None:
    answer = upload(cf, "app", {"compatibility_date": "2025-06-01", "compatibility_flags": ["nodejs_compat"]})

    assert answer.status_code == 200, answer.text
    version = cf.latest_version("app")
    assert answer.json()["result"]["deployment_id"] == version.id  # what wrangler prints as the version
    assert version.code is not None
    assert [(m.name, m.kind) for m in version.code.modules] == [("index.js", "esModule"), ("data.txt", "text")]
    assert (version.code.compatibility_date, version.code.compatibility_flags) == ("2025-06-01", ("nodejs_compat",))


def test_a_secret_given_as_type_and_name_is_inherited_and_other_bindings_are_kept(cf: CloudflareEmulator) -> None:
    store_binding = {"type": "secrets_store_secret", "name": "SHARED", "store_id": "s1", "secret_name": "shared"}
    upload(cf, "app", {"bindings": [{"type": "secret_text", "name": "API_KEY", "text": CANARY}, store_binding]})

    again = upload(cf, "app", {"bindings": [{"type": "secret_text", "name": "API_KEY"}, store_binding]})

    assert again.status_code == 200, again.text
    version = cf.latest_version("app")
    assert version.secrets["API_KEY"]["text"] == CANARY
    detail = httpx.get(
        f"{cf.api_base}/accounts/{cf.account_id}/workers/scripts/app/versions/{version.id}",
        headers={"Authorization": f"Bearer {cf.api_token}"},
        timeout=10,
    ).json()["result"]
    assert store_binding in detail["resources"]["bindings"]
    assert CANARY not in json.dumps(detail)


def test_the_services_route_describes_a_script_and_answers_10007_for_a_missing_one(cf: CloudflareEmulator) -> None:
    upload(cf, "app", {"compatibility_date": "2025-06-01"})
    headers = {"Authorization": f"Bearer {cf.api_token}"}
    base = f"{cf.api_base}/accounts/{cf.account_id}/workers/services"

    found = httpx.get(f"{base}/app", headers=headers, timeout=10)
    missing = httpx.get(f"{base}/nothing", headers=headers, timeout=10)

    script = found.json()["result"]["default_environment"]["script"]
    assert found.status_code == 200
    assert (script["id"], script["compatibility_date"], script["last_deployed_from"]) == ("app", "2025-06-01", "api")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == 10007
