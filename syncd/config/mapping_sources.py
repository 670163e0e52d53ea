"""``[mapping.sources.NAME]`` and templates: the schema of a mapping's named sources, and the rules
that tie what reads a source to the sources the mapping declares (``syncd.config.mappings`` uses them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import PlainSerializer, PlainValidator, field_validator
from pydantic_core import PydanticKnownError

from syncd.config.strict import RuleProblem, StrictModel
from syncd.config.templates import CompiledTemplate, TemplateProblem, compile_template, reference_problems

PRIMARY_SOURCE = "vault"  # the name of the source the ``vault = {...}`` table declares
_SOURCE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
# Words a template cannot use as a variable name (Jinja keywords and literals, its special names).
_TEMPLATE_WORDS = frozenset(
    {
        *("and", "or", "not", "in", "is", "if", "else", "elif", "endif", "for", "endfor", "true", "false"),
        *("none", "True", "False", "None", "loop", "self", "super", "caller", "varargs", "kwargs", "block"),
        *("extends", "include", "import", "from", "as", "with", "without", "context", "recursive"),
    }
)


def source_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a source (templates refer to sources by name), or None."""
    if name == PRIMARY_SOURCE:
        return f"the source {PRIMARY_SOURCE!r} is the mapping's vault = {{ ... }} table; give this one another name"
    if not _SOURCE_NAME.match(name) or name in _TEMPLATE_WORDS:
        return (
            f"{name[:40]!r} cannot name a source: letters, digits and _ (at most 63), starting with a letter, "
            "not a template keyword, e.g. db or cfg"
        )
    return None


class SourceTable(StrictModel):
    """``[mapping.sources.NAME]``: a KV secret (``kind = "kv"``, the default: ``mount``, ``path``,
    ``kv_version`` as in ``vault = {...}``) or a database static role (``kind = "database"``: the
    database secrets engine's ``mount``, default ``"database"``, and ``role``)."""

    kind: Literal["kv", "database"] = "kv"
    mount: str | None = None
    path: str | None = None
    kv_version: Literal["auto", 1, 2] | None = None
    role: str | None = None

    @field_validator("mount", "path", "role")
    @classmethod
    def _no_edge_slashes(cls, value: str | None) -> str | None:
        if value is None:
            return None
        stripped = value.strip("/")
        if not stripped:
            raise ValueError("must not be empty")
        return stripped

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        if data.get("kind", "kv") == "database":
            if data.get("role") is None:
                yield ("role",), 'missing: add role = "app" (the static role, read at {mount}/static-creds/{role})'
            for other in ("path", "kv_version"):
                if other in data:
                    yield (other,), f'{other} is for a KV source; a kind = "database" source has mount and role'
        elif data.get("kind", "kv") == "kv":
            for needed, example in (("mount", '"secret"'), ("path", '"payments/api"')):
                if data.get(needed) is None:
                    yield (needed,), f"missing: add {needed} = {example} to this source"
            if "role" in data:
                yield ("role",), 'role is for kind = "database" sources (a KV source has mount and path)'


def _compiled(value: Any) -> CompiledTemplate:
    if not isinstance(value, str):
        raise PydanticKnownError("string_type")
    return compile_template(value)


# A template: validated (parsed, checked, compiled once) as it is read from the file.
TemplateText = Annotated[CompiledTemplate, PlainValidator(_compiled), PlainSerializer(str)]



def declared_sources(data: dict[str, Any]) -> set[str]:
    """The source names a raw ``[[mapping]]`` table declares (``vault`` when it has that table)."""
    names = {PRIMARY_SOURCE} if "vault" in data else set()
    sources = data.get("sources")
    if isinstance(sources, dict):
        names |= {n for n in sources if isinstance(n, str) and n != PRIMARY_SOURCE}
    return names


def template_reference_problems(text: Any, declared: set[str]) -> list[TemplateProblem]:
    if not isinstance(text, str):
        return []
    try:
        compiled = compile_template(text)  # cached: the field's validation compiled it already
    except TemplateProblem:
        return []  # reported by the field itself
    return reference_problems(compiled, frozenset(declared))


