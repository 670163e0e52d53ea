"""Turning one Vault secret version into the Cloudflare bindings a mapping asks for.

``desired_bindings`` is pure: config + one read version in, secret bodies out. It checks everything it
can before anything is sent (missing keys, names that are not JavaScript identifiers, Cloudflare's
5 KB limit for Worker secrets or 65,536 bytes for a Secrets Store secret, undecodable key material)
and reports every problem of the mapping at once in one
``ValuesRejected``, naming bindings and Vault keys, never values.

With ``all_keys``, the Vault keys that feed a ``secret_key`` binding of the same mapping are left out
of the ``secret_text`` bindings: a private key should not also go out as plain text.

**Non-string values.** Vault KV values may be any JSON type. A ``secret_text`` binding gets a string
as it is, and any other value as its JSON text: ``42`` -> ``42``, ``true`` -> ``true``, ``null`` ->
``null``, an object or array -> JSON with sorted keys (``{"a": 1, "b": [1, 2]}``). ``json_binding``
sends the whole secret as compact JSON with sorted keys. The 5 KB limit applies to that text.

**One rule for ``once`` and ``check``.** ``bindings_for`` is what a reconciliation sends for one read
version under the ``on_delete`` policy; ``syncd check`` calls the same function on the current
version, so a value ``once`` would refuse (over 5 KB, undecodable key material, a missing key) fails
``check`` too, with the same message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.config import MappingSettings, SecretKeyBinding, SecretTextBindings, is_binding_name
from syncd.config.templates import CompiledTemplate
from syncd.engine.keymaterial import encode_key_material
from syncd.engine.templates import TemplateRenderError, render
from syncd.errors import ValueRejected
from syncd.model import BindingKind, DestinationKind, SecretBody, SecretData, SecretValue, SecretVersion, Target
from syncd.model_store import MAX_STORE_VALUE_BYTES

Reads = Mapping[str, SecretVersion]  # a mapping's read sources by name

# Cloudflare documents "5 KB per variable" for Worker secrets.
MAX_TEXT_BYTES = 5 * 1024


@dataclass(frozen=True, slots=True)
class TextLimit:
    """The most bytes a text value may have on one kind of destination, and how to name that limit."""

    max_bytes: int
    label: str


WORKER_TEXT_LIMIT = TextLimit(MAX_TEXT_BYTES, "Cloudflare's 5 KB limit")
# A Secrets Store secret: "a string that does not exceed 65,536 bytes" (developers.cloudflare.com/
# secrets-store/manage-secrets, updated Sep 2026; it said 1,024 earlier). If a store's own limit is
# lower, its refusal fails the mapping with its reason.
STORE_TEXT_LIMIT = TextLimit(MAX_STORE_VALUE_BYTES, "the Secrets Store's limit")


def text_limit(target: Target) -> TextLimit:
    return STORE_TEXT_LIMIT if target.kind is DestinationKind.SECRETS_STORE else WORKER_TEXT_LIMIT


@dataclass(frozen=True, slots=True)
class DesiredBinding:
    """One binding as it should be on one Worker. ``body`` holds the value (masked)."""

    mapping: str
    target: Target
    name: str
    kind: BindingKind
    body: SecretBody

    def shape(self) -> str:
        """A stable digest of the non-secret part (type, format, algorithm, usages), not the name."""
        meta = self.body.metadata()
        meta.pop("name", None)
        canonical = json.dumps(meta, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ValueProblem:
    binding: str
    why: str

    def __str__(self) -> str:
        return f"binding {self.binding!r}: {self.why}"


class ValuesRejected(ValueRejected):
    """Every problem of one mapping's values. ``binding``/``why`` are the first problem's."""

    def __init__(self, mapping: str, problems: Sequence[ValueProblem]) -> None:
        if not problems:
            raise ValueError("ValuesRejected needs at least one problem")
        self.mapping = mapping
        self.problems = tuple(problems)
        super().__init__(problems[0].binding, problems[0].why)
        if len(problems) > 1:
            listed = "; ".join(str(p) for p in problems)
            self.args = (f"mapping {mapping!r}: {len(problems)} bindings rejected: {listed}",)

    @property
    def reason(self) -> str:
        return ValueRejected.__name__


def desired_bindings(
    mapping: MappingSettings, target: Target, secret: SecretVersion, others: Reads | None = None
) -> list[DesiredBinding]:
    """The bindings ``mapping`` wants on ``target`` for this version of its primary source (and
    ``others``: its other sources' reads, by name), sorted by name.

    Raises ``ValuesRejected`` (a ``ValueRejected``) listing every problem of the mapping.
    """
    reads = _reads(mapping, secret, others)
    limit = text_limit(target)
    problems: list[ValueProblem] = []
    bodies: list[SecretBody] = []
    for item in itertools.chain(
        _text_bodies(mapping, secret, limit), _template_bodies(mapping, reads, limit), _key_bodies(mapping, reads)
    ):
        if isinstance(item, ValueProblem):
            problems.append(item)
        else:
            bodies.append(item)
    seen: dict[str, int] = {}
    for body in bodies:
        seen[body.name] = seen.get(body.name, 0) + 1
    problems.extend(
        ValueProblem(name, f"binding name is produced {count} times in this mapping")
        for name, count in sorted(seen.items())
        if count > 1
    )
    if problems:
        raise ValuesRejected(mapping.name, problems)
    return [
        DesiredBinding(mapping.name, target, body.name, body.kind, body)
        for body in sorted(bodies, key=lambda b: b.name)
    ]


def _reads(mapping: MappingSettings, secret: SecretVersion, others: Reads | None) -> dict[str, SecretVersion]:
    return {**(others or {}), mapping.vault.name: secret}


def _where(secret: SecretVersion) -> str:
    return f"{secret.ref} v{secret.version}" if secret.version is not None else str(secret.ref)


def _missing(key: str, secret: SecretVersion, source: str | None = None) -> str:
    of = "" if source is None else f" (source {source!r})"
    return f"Vault key {key!r} is missing from {_where(secret)}{of}"


def _text_body(name: str, value: SecretValue, limit: TextLimit, what: str = "value") -> SecretBody | ValueProblem:
    size = len(value.reveal().encode("utf-8"))
    if size > limit.max_bytes:
        return ValueProblem(name, f"{what} is {size} bytes, over {limit.label} ({limit.max_bytes} bytes)")
    return SecretBody({"name": name, "type": BindingKind.SECRET_TEXT.value, "text": value.reveal()})


def _rendered(binding: str, template: CompiledTemplate, reads: Reads) -> str | ValueProblem:
    """A template's text, or the problem (names only)."""
    try:
        return render(template, reads)
    except TemplateRenderError as exc:
        why = str(exc)
    return ValueProblem(binding, f"template: {why}")


def _template_bodies(
    mapping: MappingSettings, reads: Reads, limit: TextLimit
) -> Iterator[SecretBody | ValueProblem]:
    for item in mapping.templates:
        text = _rendered(item.binding, item.template, reads)
        if isinstance(text, ValueProblem):
            yield text
        else:
            sources = ", ".join(sorted(item.template.names))
            yield _text_body(item.binding, SecretValue(text), limit, f"rendered value (template over {sources})")


def _text_bodies(
    mapping: MappingSettings, secret: SecretVersion, limit: TextLimit
) -> Iterator[SecretBody | ValueProblem]:
    spec: SecretTextBindings | None = mapping.secret_text
    if spec is None:
        return
    data = secret.data
    if spec.json_binding is not None:
        yield _text_body(spec.json_binding, data.as_json(), limit)
    elif spec.keys is not None:
        for key, name in sorted(spec.keys.items(), key=lambda kv: kv[1]):
            yield _text_body(name, data.text(key), limit) if key in data else ValueProblem(name, _missing(key, secret))
    else:
        consumed = {k.vault_key for k in mapping.secret_key if k.source == mapping.vault.name}
        for key in data:
            if key in consumed:
                continue
            name = spec.prefix + (key.upper() if spec.uppercase else key)
            if not is_binding_name(name):
                yield ValueProblem(
                    name, f"Vault key {key!r} does not make a valid binding name (JavaScript identifier)"
                )
            else:
                yield _text_body(name, data.text(key), limit)


def _key_input(mapping: MappingSettings, spec: SecretKeyBinding, reads: Reads) -> Any:
    """What a key binding's material is made of: the template's text, or the source key's value."""
    if spec.template is not None:
        return _rendered(spec.binding, spec.template, reads)
    assert spec.vault_key is not None  # guaranteed by validation: one of vault_key, template
    read = reads[spec.source]
    if spec.vault_key not in read.data:
        named = None if spec.source == mapping.vault.name else spec.source
        return ValueProblem(spec.binding, _missing(spec.vault_key, read, named))
    return read.data.raw(spec.vault_key)


def _key_bodies(mapping: MappingSettings, reads: Reads) -> Iterator[SecretBody | ValueProblem]:
    for spec in mapping.secret_key:
        raw = _key_input(mapping, spec, reads)
        if isinstance(raw, ValueProblem):
            yield raw
            continue
        try:
            material = encode_key_material(spec, raw)
        except ValueRejected as exc:
            yield ValueProblem(exc.binding, exc.why)
            continue
        yield SecretBody(
            {
                "name": spec.binding,
                "type": BindingKind.SECRET_KEY.value,
                "format": spec.format,
                "algorithm": dict(spec.algorithm),
                "usages": list(spec.usages),
                **material,
            }
        )


def bindings_for(
    mapping: MappingSettings, target: Target, secret: SecretVersion, *, on_delete: str, others: Reads | None = None
) -> tuple[list[DesiredBinding], frozenset[str]]:
    """What a reconciliation sends for this version: (bindings, names whose Vault key vanished).

    With ``on_delete = "delete"`` a mapped Vault key that is absent drops its binding (returned as
    vanished, to be deleted); otherwise it is a problem. A template never vanishes: a key it needs
    that is absent is a problem. ``others``: the other sources' reads, by name. Raises ``ValuesRejected``.
    """
    vanished: set[str] = set()
    reads = _reads(mapping, secret, others)
    missing = missing_key_bindings(mapping, secret.data, reads)
    if missing and on_delete == "delete":
        mapping = without_bindings(mapping, missing)
        vanished |= missing
    return desired_bindings(mapping, target, secret, others), frozenset(vanished)


def missing_key_bindings(mapping: MappingSettings, data: SecretData, reads: Reads | None = None) -> set[str]:
    """Binding names whose explicitly mapped Vault key is absent from the data (of the primary
    source; ``reads`` gives the others, for a key binding with its own ``source``)."""
    missing = set()
    for b in mapping.secret_key:
        if b.vault_key is None:
            continue
        source = data if b.source == mapping.vault.name or reads is None else reads[b.source].data
        if b.vault_key not in source:
            missing.add(b.binding)
    text = mapping.secret_text
    if text is not None and text.keys:
        missing |= {name for key, name in text.keys.items() if key not in data}
    return missing


def without_bindings(mapping: MappingSettings, names: set[str]) -> MappingSettings:
    """The mapping minus some explicitly mapped bindings (not re-validated: it may map no key at all)."""
    text = mapping.secret_text
    if text is not None and text.keys:
        text = dataclasses.replace(text, keys={k: n for k, n in text.keys.items() if n not in names})
    kept = tuple(b for b in mapping.secret_key if b.binding not in names)
    return dataclasses.replace(mapping, secret_text=text, secret_key=kept)
