"""Credential references: where a secret the daemon itself needs comes from, never the secret."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from syncd.config.strict import StrictModel


class CredentialRef(StrictModel):
    """Where a credential comes from: exactly one of ``env``, ``file`` or (development only) ``value``."""

    env: str | None = None
    file: Path | None = None
    value: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _exactly_one(self) -> CredentialRef:
        given = [k for k in ("env", "file", "value") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of env, file, value (got {', '.join(given) or 'none'})")
        return self

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
