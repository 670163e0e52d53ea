"""A ``secret_key`` binding as workerd's config takes it (``Worker.Binding.CryptoKey``).

The Cloudflare API stores ``key_base64`` (standard base64) for ``raw``, ``pkcs8`` and ``spki``
and ``key_jwk`` for ``jwk``. workerd's ``cryptoKey`` takes ``base64`` (raw bytes), ``pkcs8`` and
``spki`` as PEM text, and ``jwk`` as JSON text, with ``algorithm = (json = "...")``, ``usages`` and
``extractable`` (false: a Worker secret is not extractable). So pkcs8 and spki DER is wrapped back
into PEM (``PRIVATE KEY`` / ``PUBLIC KEY``, 64 columns), per workerd's ``src/workerd/server/workerd.capnp``.
"""

from __future__ import annotations

import base64
import json
import textwrap
from typing import Any

from syncd.devstack.workers.capnp import text

PEM_LABELS = {"pkcs8": "PRIVATE KEY", "spki": "PUBLIC KEY"}


def der_to_pem(der_base64: str, label: str) -> str:
    body = base64.b64encode(base64.b64decode(der_base64)).decode("ascii")
    lines = "\n".join(textwrap.wrap(body, 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n"


def crypto_key_binding(secret: dict[str, Any]) -> str:
    """The capnp ``cryptoKey = (...)`` body for one stored ``secret_key`` secret (value included)."""
    key_format = secret["format"]
    if key_format == "jwk":
        material = f"jwk = {text(json.dumps(secret['key_jwk'], sort_keys=True))}"
    elif key_format in PEM_LABELS:
        material = f"{key_format} = {text(der_to_pem(secret['key_base64'], PEM_LABELS[key_format]))}"
    else:
        material = f"base64 = {text(secret['key_base64'])}"
    usages = ", ".join(secret["usages"])
    algorithm = text(json.dumps(secret["algorithm"], sort_keys=True))
    return f"cryptoKey = ({material}, algorithm = (json = {algorithm}), extractable = false, usages = [{usages}])"
