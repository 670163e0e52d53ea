"""Shared constants and small builders for the Cloudflare emulator tests."""

from __future__ import annotations

from typing import Any

from syncd.devstack.cloudflare import CloudflareEmulator

SCRIPT = "worker-a"
HMAC_KEY = {
    "name": "SIGNING_KEY",
    "type": "secret_key",
    "format": "raw",
    "algorithm": {"name": "HMAC", "hash": "SHA-256"},
    "usages": ["sign", "verify"],
    "key_base64": "c2VjcmV0LWtleS1ieXRlcw==",
}


def script_path(cf: CloudflareEmulator, script: str = SCRIPT) -> str:
    return f"/accounts/{cf.account_id}/workers/scripts/{script}"


def text_secret(name: str, text: str) -> dict[str, Any]:
    return {"name": name, "type": "secret_text", "text": text}
