"""The base of every settings model: strict types, unknown keys refused, every problem in one pass.

- **Strict types.** ``port = "8080"``, ``interval_seconds = "30"`` and ``enabled = "yes"`` are
  refused (an integer, a number, a boolean is expected), never coerced; an integer is a valid number.
  Paths are the one exception: TOML has no path type, so a string is a path (``ConfigPath``).
- **One pass.** pydantic runs a model's ``mode="after"`` validators only when all its fields are
  valid, so a rule across fields would wait for an unrelated type error to be fixed. Such rules are
  written instead as ``_rules(data, context)``, over the raw TOML table, and run whether or not the
  fields validated: their problems join the field errors in one ``ValidationError``. A rule yields
  ``(location inside this table, message)`` and must tolerate any input (check types as it reads).
  A new field or section needs nothing special: it is validated in the same pass.
- **Inline credentials.** A model with an ``allow_inline_credentials`` field decides, for the
  credentials below it, whether ``{ value = ... }`` is accepted (see ``syncd.config.credentials``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Strict, ValidationError, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

ConfigPath = Annotated[Path, Strict(False)]  # a TOML string is a path
RuleProblem = tuple[tuple[str | int, ...], str]  # (location inside the table, message)
INLINE_ALLOWED = "inline_credentials_allowed"  # the validation-context key (see CredentialRef)
INLINE_SWITCHABLE = "inline_credentials_switchable"  # inside a section with allow_inline_credentials


def number_in(data: dict[str, Any], key: str, default: float) -> float | None:
    """A number field of a raw table for a ``_rules`` check: its default when absent, None when it
    is not a number (its own field error says so; the rule then stays quiet)."""
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def must_not_exceed(
    data: dict[str, Any],
    smaller: tuple[str, float],
    larger: tuple[str, float],
    *,
    strictly: bool = False,
    blame_larger: bool = False,
) -> Iterator[RuleProblem]:
    """``smaller <= larger`` (``<`` when ``strictly``) between two number fields of one table; the
    problem is reported at ``smaller`` (or at ``larger`` with ``blame_larger``)."""
    low, high = number_in(data, *smaller), number_in(data, *larger)
    if low is None or high is None or low < high or (low == high and not strictly):
        return
    if blame_larger:
        relation = "greater than" if strictly else "at least"
        yield (larger[0],), f"{larger[0]} ({high:g}) must be {relation} {smaller[0]} ({low:g})"
    else:
        relation = "less than" if strictly else "at most"
        yield (smaller[0],), f"{smaller[0]} ({low:g}) must be {relation} {larger[0]} ({high:g})"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        """Rules across the fields of this table; override (see the module docstring)."""
        return iter(())

    @model_validator(mode="wrap")
    @classmethod
    def _validate_in_one_pass(cls, data: Any, handler: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        context = info.context if isinstance(info.context, dict) else {}
        outer = context.get(INLINE_ALLOWED), context.get(INLINE_SWITCHABLE)
        switch = "allow_inline_credentials" in cls.model_fields and INLINE_ALLOWED in context
        if switch:
            context[INLINE_ALLOWED] = data.get("allow_inline_credentials") is True
            context[INLINE_SWITCHABLE] = True
        try:
            errors: list[InitErrorDetails] = []
            result = None
            try:
                result = handler(data)
            except ValidationError as exc:
                errors = [carried_error(e) for e in exc.errors(include_url=False)]
            errors.extend(
                InitErrorDetails(type=PydanticCustomError("config_rule", "{msg}", {"msg": msg}), loc=loc, input=None)
                for loc, msg in cls._rules(data, context)
            )
        finally:
            if switch:
                context[INLINE_ALLOWED], context[INLINE_SWITCHABLE] = outer
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return result


class ValidatedAs:
    """Field metadata: the value is validated as ``model`` (its TOML schema), then kept in another form.

    ``syncd.config.messages`` follows it to suggest the closest key for a typo inside such a table.
    """

    def __init__(self, model: type[StrictModel]) -> None:
        self.model = model


def carried_error(error: Any, prefix: tuple[str | int, ...] = ()) -> InitErrorDetails:
    """An error of a nested validation, carried up unchanged (type, message, context, input), its
    location under ``prefix``."""
    ctx = dict(error.get("ctx") or {})
    ctx = {k: v if isinstance(v, str | int | float | bool) else str(v) for k, v in ctx.items()}
    ctx["msg"] = error["msg"]
    return InitErrorDetails(
        type=PydanticCustomError(error["type"], "{msg}", ctx),
        loc=(*prefix, *error["loc"]),
        input=error.get("input"),
    )
