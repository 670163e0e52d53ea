"""pydantic's validation errors, reworded as ``ConfigProblem``s a person can act on.

Each problem names the file, the mapping (its name, cut to 80 characters, or ``mapping[3]``) and
the dotted key as written in the file. Type errors say what type is expected and show the accepted
form (``write port = 8080, without quotes``); a missing key or section says what to add, with an
example; a string where a credential belongs says to use ``{ env = ... }`` or ``{ file = ... }``.
Values from the file are echoed only when they are the harmless part of the fix (a number in
quotes); never a credential.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from syncd.config.strict import ValidatedAs
from syncd.errors import ConfigProblem, shorten

# Discriminated unions put the member's tag into the location ("vault.auth.approle.secret_id"):
# dropped so the key reads as the user wrote it.
_UNION_TAGS = frozenset({"token", "approle", "kubernetes", "jwt", "api_token", "global_key"})
_DURATION = re.compile(r"^\s*\d+(\.\d+)?\s*(ms|s|sec|m|min|h)\s*$", re.IGNORECASE)
_TRUE_WORDS = frozenset({"true", "yes", "on", "1", "y", "t"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0", "n", "f"})

# What to add when a required key or section is missing, by dotted key.
_TOP_MISSING_HINTS = {
    "vault": 'add a [vault] section, e.g. [vault] address = "https://vault.example.com:8200"',
    "vault.address": 'add address = "https://vault.example.com:8200" to [vault]',
    "vault.auth.method": 'add method = "token", "approle", "kubernetes" or "jwt" to [vault.auth]',
    "vault.auth.role_id": 'add role_id = "<the AppRole role id>" to [vault.auth]',
    "vault.auth.secret_id": 'add secret_id = { file = "/var/run/secrets/vault/secret-id" } '
    '(or { env = "VAULT_SECRET_ID" }) to [vault.auth]',
    "vault.auth.role": 'add role = "syncd" (the Vault role to log in as) to [vault.auth]',
    "vault.auth.token_file": 'add token_file = "/var/run/secrets/tokens/vault-token" to [vault.auth]',
    "cloudflare": 'add a [cloudflare] section, e.g. [cloudflare] account_id = "<32 hex characters>"',
    "cloudflare.auth.api_token": 'add api_token = { env = "CLOUDFLARE_API_TOKEN" } to [cloudflare.auth]',
    "cloudflare.auth.global_key": 'add global_key = { env = "CLOUDFLARE_API_KEY" } to [cloudflare.auth]',
    "cloudflare.auth.email": 'add email = "ops@example.com" (the account\'s login) to [cloudflare.auth]',
}
# The same for keys inside one [[mapping]].
_MAPPING_MISSING_HINTS = {
    "name": 'add name = "payments-api" (unique in the file)',
    "vault": 'add vault = { mount = "secret", path = "payments/api" }',
    "vault.mount": 'add mount = "secret" to the mapping\'s vault table',
    "vault.path": 'add path = "payments/api" to the mapping\'s vault table',
    "target": 'add target = { script = "my-worker" }',
    "target.script": 'add script = "my-worker" to the mapping\'s target table',
}


def problems_from_validation(
    file: str, raw: Mapping[str, Any], exc: ValidationError, root: type[BaseModel]
) -> list[ConfigProblem]:
    """One problem per error; ``root`` (the model of the whole file) lets an unknown key suggest a known one."""
    return [_problem(file, raw, error, root) for error in exc.errors(include_url=False)]


def _problem(file: str, raw: Mapping[str, Any], error: Any, root: type[BaseModel]) -> ConfigProblem:
    loc: list[str | int] = list(error["loc"])
    if error["type"] == "extra_forbidden":
        error = {**error, "suggestion": _close_key(root, loc)}
    if len(loc) > 2 and loc[1] == "auth" and loc[2] in _UNION_TAGS:
        del loc[2]
    mapping = None
    if len(loc) >= 2 and loc[0] == "mapping" and isinstance(loc[1], int):
        mapping = _mapping_label(raw, loc[1])
        loc = loc[2:]
    key = ".".join(shorten(str(part)) for part in loc)
    message = _message(error, key, loc, in_mapping=mapping is not None)
    return ConfigProblem(file, mapping, key or ("(mapping)" if mapping else "(top level)"), message)


def _mapping_label(raw: Mapping[str, Any], index: int) -> str:
    mappings = raw.get("mapping")
    if isinstance(mappings, list) and index < len(mappings) and isinstance(mappings[index], dict):
        name = mappings[index].get("name")
        if isinstance(name, str) and name:
            return shorten(name)
    return f"mapping[{index}]"


def _message(error: Any, key: str, loc: list[str | int], *, in_mapping: bool) -> str:
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    name = next((str(part) for part in reversed(loc) if isinstance(part, str)), "key")
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        suggestion = error.get("suggestion")
        return f"unknown key (did you mean {suggestion!r}?)" if suggestion else "unknown key"
    if kind == "missing":
        hints = _MAPPING_MISSING_HINTS if in_mapping else _TOP_MISSING_HINTS
        return "missing: " + hints.get(key, f"add {name} = ... (see config.example.toml)")
    if kind in ("model_type", "model_attributes_type", "dict_type") and ctx.get("class_name") == "CredentialRef":
        return (
            "inline credentials are refused: a credential is a reference, "
            f'write {name} = {{ env = "VAR" }} or {name} = {{ file = "/path" }}'
        )
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a table, e.g. {name} = {{ ... }} or a [{key}] section"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return _expected("an integer", name, value, _as_number(value, integer=True), "8080")
    if kind in ("float_type", "float_parsing"):
        return _number_message(name, value)
    if kind in ("bool_type", "bool_parsing"):
        return _expected("true or false", name, value, _as_bool(value), "true")
    if kind == "string_type":
        return f'expected a string in quotes, e.g. {name} = "..."'
    if kind == "list_type":
        return f"expected an array, e.g. {name} = [ ... ]"
    if kind == "literal_error":
        return message + _literal_hint(name, value, str(ctx.get("expected", "")))
    if kind == "union_tag_not_found":
        return "missing: " + _TOP_MISSING_HINTS.get(key + ".method", f"add {ctx.get('discriminator', 'a tag')}")
    return message


def _expected(what: str, name: str, value: Any, accepted: str | None, example: str) -> str:
    if accepted is not None:
        return f"expected {what}: write {name} = {accepted}, without quotes"
    return f"expected {what}, e.g. {name} = {example}"


def _number_message(name: str, value: Any) -> str:
    seconds = name.endswith("_seconds")
    what = "a number of seconds" if seconds else "a number"
    accepted = _as_number(value, integer=False)
    if accepted is not None:
        return f"expected {what}: write {name} = {accepted}, without quotes"
    if seconds and isinstance(value, str) and _DURATION.match(value):
        return f'expected {what}, e.g. {name} = 30 (duration strings like "30s" are not supported)'
    return f"expected {what}, e.g. {name} = {'30' if seconds else '1.5'}"


def _as_number(value: Any, *, integer: bool) -> str | None:
    """The number a quoted number stands for (the form to write), or None."""
    if not isinstance(value, str) or len(value) > 20:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if integer:
        return str(int(number)) if number.is_integer() else None
    return value.strip()


def _as_bool(value: Any) -> str | None:
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS:
        return "true"
    if isinstance(value, str) and value.strip().lower() in _FALSE_WORDS:
        return "false"
    return None


def _literal_hint(name: str, value: Any, expected: str) -> str:
    """A hint for a near miss: another case (``"BULK"``), or a number in quotes (``"2"``)."""
    if not isinstance(value, str) or len(value) > 40:
        return ""
    for option in re.findall(r"'([^']*)'", expected):
        if option.lower() == value.lower() and option != value:
            return f" (values are case-sensitive: write {option!r})"
    if value.strip() in re.findall(r"(?<!')\b(\d+)\b(?!')", expected):
        return f" (a number: write {name} = {value.strip()}, without quotes)"
    return ""


def _close_key(root: type[BaseModel], loc: Sequence[str | int]) -> str | None:
    """The known key closest to the unknown last part of ``loc`` (a typo), if one is close."""
    if not loc or not isinstance(loc[-1], str):
        return None
    candidates: list[type[BaseModel]] = [root]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if part in _UNION_TAGS:  # a union member's tag: keep the members it names
            tagged = [m for m in candidates if part in m.model_fields or _method_of(m) == part]
            candidates = tagged or candidates
            continue
        fields = [m.model_fields[part] for m in candidates if part in m.model_fields]
        candidates = [model for field in fields for model in _models_of(field)]
        if not candidates:
            return None
    names = sorted({name for model in candidates for name in model.model_fields})
    close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
    return close[0] if close else None


def _models_of(field: FieldInfo) -> list[type[BaseModel]]:
    """The models a field's tables are validated as: its annotation's, or the one its metadata names
    (a field kept in another form than the model that validates it, e.g. ``[[mapping]]``)."""
    named: list[type[BaseModel]] = [m.model for m in field.metadata if isinstance(m, ValidatedAs)]
    return named or _models_in(field.annotation)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _method_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("method")
    args = typing.get_args(field.annotation) if field is not None else ()
    return str(args[0]) if len(args) == 1 else None
