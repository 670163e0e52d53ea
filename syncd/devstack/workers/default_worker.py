"""The default Worker: what a script without uploaded code runs in the devstack's Workers runtime.

It answers every request with JSON describing what it sees, never a value:

```
{"script": "my-worker", "version": {"id": "...", "number": 3},
 "message": "syncd devstack: the fixed message",
 "bindings": {
   "API_KEY": {"type": "secret_text", "sha256": "<hex of SHA-256 over the UTF-8 text>"},
   "SIGNING_KEY": {"type": "secret_key", "algorithm": {...CryptoKey.algorithm}, "usages": [...],
                   "operation": "sign", "params": {...}, "result_base64": "<signature>"},
   "SHARED": {"type": "secrets_store_secret", "sha256": "..."},
   ...}}
```

A key is used once per request over ``message`` (UTF-8): ``sign`` when its usages allow it (HMAC,
RSASSA-PKCS1-v1_5, RSA-PSS with saltLength 32, ECDSA with SHA-256 giving r||s as WebCrypto does,
Ed25519), else ``encrypt`` (AES-GCM with a 12-byte zero IV, AES-CBC with a 16-byte zero IV, AES-CTR
with a zero counter and length 64, RSA-OAEP without a label), else, given ``?input=<base64>`` (or
``?input.NAME=`` for one binding), ``verify`` of that signature (``"verified": true|false``) or
``decrypt`` of that ciphertext (``"plaintext_sha256"``). HKDF keys derive 256 bits with an empty
salt and info ``message`` over SHA-256. A key it cannot use says so in ``"operation": "none"``
with a ``hint``; an operation that throws reports ``"error"``. So a test can check the result with
the key material it holds (``cryptography`` in Python) without the Worker revealing the key.
"""

from __future__ import annotations

MESSAGE = "syncd devstack: the fixed message"
MODULE_NAME = "devstack-default-worker.js"

SOURCE = r"""
const MESSAGE = "%MESSAGE%";
const encoder = new TextEncoder();

function toBase64(buffer) {
  let text = "";
  for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
  return btoa(text);
}

function fromBase64(text) {
  const standard = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(standard), (c) => c.charCodeAt(0));
}

async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function signParams(name) {
  if (name === "HMAC" || name === "RSASSA-PKCS1-v1_5" || name === "Ed25519" || name === "NODE-ED25519") {
    return { name };
  }
  if (name === "RSA-PSS") return { name, saltLength: 32 };
  if (name === "ECDSA") return { name, hash: "SHA-256" };
  return null;
}

function cipherParams(name) {
  if (name === "AES-GCM") return [{ name, iv: new Uint8Array(12) }, { name, iv_base64: toBase64(new Uint8Array(12)) }];
  if (name === "AES-CBC") return [{ name, iv: new Uint8Array(16) }, { name, iv_base64: toBase64(new Uint8Array(16)) }];
  if (name === "AES-CTR") {
    const zeros = toBase64(new Uint8Array(16));
    return [{ name, counter: new Uint8Array(16), length: 64 }, { name, counter_base64: zeros, length: 64 }];
  }
  if (name === "RSA-OAEP") return [{ name }, { name }];
  return null;
}

async function useKey(key, input) {
  const name = key.algorithm.name;
  const message = encoder.encode(MESSAGE);
  const usages = key.usages;
  const signing = signParams(name);
  const cipher = cipherParams(name);
  if (usages.includes("sign") && signing) {
    const signature = await crypto.subtle.sign(signing, key, message);
    return { operation: "sign", params: signing, result_base64: toBase64(signature) };
  }
  if (usages.includes("encrypt") && cipher) {
    const ciphertext = await crypto.subtle.encrypt(cipher[0], key, message);
    return { operation: "encrypt", params: cipher[1], result_base64: toBase64(ciphertext) };
  }
  if (usages.includes("verify") && signing && input) {
    const verified = await crypto.subtle.verify(signing, key, fromBase64(input), message);
    return { operation: "verify", params: signing, verified };
  }
  if (usages.includes("decrypt") && cipher && input) {
    const plaintext = await crypto.subtle.decrypt(cipher[0], key, fromBase64(input));
    const digest = await sha256(new TextDecoder().decode(plaintext));
    return { operation: "decrypt", params: cipher[1], plaintext_sha256: digest };
  }
  if (usages.includes("deriveBits") && name === "HKDF") {
    const params = { name, hash: "SHA-256", salt: new Uint8Array(0), info: message };
    const bits = await crypto.subtle.deriveBits(params, key, 256);
    const shown = { name, hash: "SHA-256", salt_base64: "", info: "message", length: 256 };
    return { operation: "deriveBits", params: shown, result_base64: toBase64(bits) };
  }
  const hint = (usages.includes("verify") || usages.includes("decrypt"))
    ? "pass ?input=<base64 signature or ciphertext> to verify or decrypt it"
    : "no operation of this key's algorithm and usages is implemented";
  return { operation: "none", hint };
}

async function describe(name, type, value, input) {
  if (type === "secret_key" || (typeof CryptoKey !== "undefined" && value instanceof CryptoKey)) {
    const report = {
      type: "secret_key", algorithm: value.algorithm, usages: value.usages, extractable: value.extractable,
    };
    try {
      return { ...report, ...(await useKey(value, input)) };
    } catch (error) {
      return { ...report, error: String(error && error.message || error) };
    }
  }
  if (type === "secrets_store_secret") {
    try {
      return { type, sha256: await sha256(await value.get()) };
    } catch (error) {
      return { type, error: String(error && error.message || error) };
    }
  }
  if (type === "version_metadata") return { type, id: value.id, tag: value.tag };
  if (typeof value === "string") return { type: type || "text", sha256: await sha256(value) };
  return { type: type || typeof value };
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const meta = env.__devstack || { bindings: Object.keys(env).map((name) => ({ name, type: "" })) };
    const bindings = {};
    for (const { name, type } of meta.bindings) {
      if (!(name in env)) continue;
      const input = url.searchParams.get("input." + name) || url.searchParams.get("input");
      bindings[name] = await describe(name, type, env[name], input);
    }
    return Response.json({ script: meta.script, version: meta.version, message: MESSAGE, bindings });
  },
};
""".replace("%MESSAGE%", MESSAGE)
