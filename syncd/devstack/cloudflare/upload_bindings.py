"""The bindings of an uploaded Worker version (``WorkerStore.upload_script``): the ones given, the
ones inherited from the latest version, and those ``keep_bindings`` keeps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syncd.devstack.cloudflare.config import EmulatorConfig
from syncd.devstack.cloudflare.envelope import INVALID_BINDING, ApiError
from syncd.devstack.cloudflare.upload import ScriptUpload
from syncd.devstack.cloudflare.validation import SECRET_TYPES, check_binding_name, invalid, validate_secret

if TYPE_CHECKING:
    from syncd.devstack.cloudflare.store import Script


def resolve_upload(
    script: Script, upload: ScriptUpload, config: EmulatorConfig
) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The bindings of an uploaded version: given ones, inherited ones and ``keep_bindings`` types.

    A secret binding given as only ``{type, name}`` is inherited like ``{"type": "inherit"}``
    (the settings API documents that form; wrangler sends it for secrets it keeps). Binding
    types holding no secret value (``secrets_store_secret``, ``version_metadata``, ...) are kept
    as given in ``other_bindings``.
    """
    plain_text: dict[str, str] = {}
    secrets: dict[str, dict[str, Any]] = {}
    others: dict[str, dict[str, Any]] = {}
    for binding in upload.bindings:
        kind = binding.get("type")
        if kind in SECRET_TYPES and not any(key in binding for key in ("text", "key_base64", "key_jwk")):
            kind = "inherit"
        if kind == "plain_text":
            var_name = check_binding_name(binding.get("name"), "plain_text", config)
            text = binding.get("text")
            if not isinstance(text, str):
                raise ApiError(400, INVALID_BINDING, f"binding {var_name} of type plain_text is invalid")
            plain_text[var_name] = text
        elif kind in SECRET_TYPES:
            secret = validate_secret(binding, config)
            secrets[secret["name"]] = secret
        elif kind == "inherit":
            _inherit(script, str(binding.get("name")), plain_text, secrets, strict=upload.strict_inherit)
            latest = script.latest
            if latest is not None and binding.get("name") in latest.other_bindings:
                others[str(binding["name"])] = latest.other_bindings[str(binding["name"])]
        else:
            name = check_binding_name(binding.get("name"), str(kind), config)
            others[name] = dict(binding)
    if "plain_text" in upload.keep_bindings:
        plain_text = {**script.plain_text, **plain_text}
    kept = {
        secret_name: secret
        for secret_name, secret in script.secrets.items()
        if secret["type"] in upload.keep_bindings and secret_name not in plain_text
    }
    latest = script.latest
    if latest is not None:
        others = {
            **{n: b for n, b in latest.other_bindings.items() if b.get("type") in upload.keep_bindings},
            **others,
        }
    return plain_text, {**kept, **secrets}, others


def _inherit(
    script: Script,
    name: str,
    plain_text: dict[str, str],
    secrets: dict[str, dict[str, Any]],
    *,
    strict: bool = True,
) -> None:
    """Copy binding ``name`` from the latest version; unresolvable is 10021 when strict."""
    latest = script.latest
    if name in script.secrets:
        secrets[name] = script.secrets[name]
    elif name in script.plain_text:
        plain_text[name] = script.plain_text[name]
    elif latest is not None and name in latest.other_bindings:
        return
    elif strict:
        raise invalid(name, "inherit", "there is no binding of that name in the latest version to inherit")


__all__ = ["resolve_upload"]
