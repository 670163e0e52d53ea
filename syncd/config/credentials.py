"""Credential references: where a secret the daemon itself needs comes from, never the secret.

A credential is ``{ env = "NAME" }`` or ``{ file = "/path" }``. A plain string in its place
(``token = "hvs..."``) is refused with that hint, without echoing it. ``{ value = "..." }`` is
accepted only under a section that sets ``allow_inline_credentials = true`` (development only);
``load_config`` refuses it everywhere else, including credentials added by future fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from syncd.config.strict import INLINE_ALLOWED, INLINE_SWITCHABLE, ConfigPath, RuleProblem, StrictModel


class CredentialRef(StrictModel):
    """Where a credential comes from: exactly one of ``env``, ``file`` or (development only) ``value``."""

    env: str | None = None
    file: ConfigPath | None = None
    value: str | None = Field(default=None, repr=False)

    @classmethod
    def _rules(cls, data: dict[str, Any], context: dict[str, Any]) -> Iterator[RuleProblem]:
        given = [k for k in ("env", "file", "value") if data.get(k) is not None]
        if len(given) != 1:
            yield (), f"give exactly one of env, file, value (got {', '.join(given) or 'none'})"
        elif given == ["value"] and context.get(INLINE_ALLOWED) is False:
            escape = (
                " (allow_inline_credentials = true in this section permits it, for development only)"
                if context.get(INLINE_SWITCHABLE)
                else " (this credential is never accepted inline)"
            )
            yield (), 'inline credentials are refused; use { env = "VAR" } or { file = "/path" }' + escape

    @property
    def is_inline(self) -> bool:
        return self.value is not None

    def describe(self) -> str:
        """Where it comes from, for messages; never the value."""
        if self.env is not None:
            return f"env:{self.env}"
        if self.file is not None:
            return f"file:{self.file}"
        return "inline"
