"""Shared pieces of the invariant tests: the app tests' Stack plus secret_key material, a dispatch
namespace script and an AppRole login, and a helper that runs the real command line.

The key material is a throwaway P-256 key and a random HMAC key made for these tests.
"""

from __future__ import annotations

import base64
from pathlib import Path

import hvac
import pytest

from syncd.app.cli.main import main
from tests.app.service_conftest_helpers import Stack, config_text

HMAC_RAW = bytes(range(7, 39))  # 32 bytes
HMAC_B64 = base64.b64encode(HMAC_RAW).decode()
PKCS8_PEM = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQguyJHJz2gKJ7h0tzH
F+T2wMOUzs9VhddlaQju8o8v9eWhRANCAARNxRJGgXklZtKHFcgt+D1Js36ldb60
TZub/NK2ollqyx0Ufq1Ub4w9Y16sMJO7MkpwYDscbtH+3Kyk/wV9mYEZ
-----END PRIVATE KEY-----
"""
PKCS8_DER_B64 = "".join(PKCS8_PEM.strip().splitlines()[1:-1])
# Distinctive slices of the key material: any of them in an output means the key leaked.
KEY_CANARIES = (HMAC_B64, HMAC_RAW.hex(), PKCS8_DER_B64[40:80], PKCS8_DER_B64[-40:])
CANARY_TENANT = "canary-tenant-5d2e81c0"

SIGNING_PATH = "app/signing"
TENANT_PATH = "tenant/api"
NAMESPACE = "customers"
TENANT_SCRIPT = "tenant-a"
KEY_SCRIPT = "edge-router"

READ_POLICY = """
path "secret/*" { capabilities = ["read", "list"] }
path "kv/*" { capabilities = ["read", "list"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }
"""

EXTRA_MAPPINGS = f"""
[[mapping]]
name = "tenant"
vault = {{ mount = "secret", path = "{TENANT_PATH}" }}
target = {{ script = "{TENANT_SCRIPT}", dispatch_namespace = "{NAMESPACE}" }}
secret_text = {{ keys = {{ token = "TENANT_TOKEN" }} }}

[[mapping]]
name = "signing"
vault = {{ mount = "secret", path = "{SIGNING_PATH}" }}
target = {{ script = "{KEY_SCRIPT}" }}

[[mapping.secret_key]]
vault_key = "hmac"
binding = "HMAC_KEY"
format = "raw"
algorithm = {{ name = "HMAC", hash = "SHA-256" }}
usages = ["sign", "verify"]
encoding = "base64"

[[mapping.secret_key]]
vault_key = "private_pem"
binding = "SIGNING_KEY"
format = "pkcs8"
algorithm = {{ name = "ECDSA", namedCurve = "P-256" }}
usages = ["sign"]
encoding = "pem"
"""


def seed_extras(stack: Stack) -> None:
    """Key material in Vault, an edge-router script and a dispatch-namespace script."""
    stack.root.secrets.kv.v2.create_or_update_secret(
        path=SIGNING_PATH, secret={"hmac": HMAC_B64, "private_pem": PKCS8_PEM}, mount_point="secret"
    )
    stack.root.secrets.kv.v2.create_or_update_secret(
        path=TENANT_PATH, secret={"token": CANARY_TENANT}, mount_point="secret"
    )
    stack.cf.create_script(KEY_SCRIPT)
    stack.cf.create_namespace(NAMESPACE)
    stack.cf.create_script(TENANT_SCRIPT, namespace=NAMESPACE)


def enable_approle(stack: Stack) -> tuple[str, str]:
    root: hvac.Client = stack.root
    root.sys.create_or_update_policy("syncd-read", READ_POLICY)
    root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("syncd", token_policies=["syncd-read"], token_ttl="1h")
    role_id = root.auth.approle.read_role_id("syncd")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("syncd")["data"]["secret_id"]
    return str(role_id), str(secret_id)


def write_invariant_config(
    tmp_path: Path, stack: Stack, *, approle_role_id: str | None = None, cloudflare_retries: int = 1
) -> Path:
    text = config_text(stack, tmp_path / "state" / "syncd.sqlite3", extra_mapping=EXTRA_MAPPINGS)
    if approle_role_id is not None:
        text = text.replace(
            'method = "token"\ntoken = { env = "SYNCD_TEST_VAULT_TOKEN" }',
            f'method = "approle"\nrole_id = "{approle_role_id}"\nsecret_id = {{ env = "SYNCD_TEST_SECRET_ID" }}',
        )
        assert 'method = "approle"' in text
    text = text.replace("retry_attempts = 1", f"retry_attempts = {cloudflare_retries}")
    path = tmp_path / "syncd.toml"
    path.write_text(text)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def state_bytes(tmp_path: Path) -> bytes:
    """The state file and its WAL/SHM companions, as raw bytes."""
    return b"".join(p.read_bytes() for p in sorted((tmp_path / "state").glob("syncd.sqlite3*")))


def issued_vault_tokens(stack: Stack) -> list[str]:
    return list(stack.vault.state.tokens.tokens)
