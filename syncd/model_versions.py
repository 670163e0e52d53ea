"""What Cloudflare reports about a Worker's versions and deployments, as values (no secret values).

Used by the clients layer (``syncd.clients.worker_versions`` builds them), the engine (``drift``
decides on them) and the app. A binding appears by name and type only: the API never returns a
secret's value, and neither do these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SYNCD_MESSAGE_PREFIX = "syncd:"
SECRET_BINDING_TYPES = frozenset({"secret_text", "secret_key"})


@dataclass(frozen=True)
class WorkerVersion:
    """One version of a Worker script, newest-first lists of these come from ``list_versions``."""

    id: str
    number: int
    created_on: str
    author_email: str
    author_id: str
    source: str
    triggered_by: str
    message: str
    # Binding name -> type; None when the listing did not include bindings (classic route).
    bindings: dict[str, str] | None = None

    @property
    def by_syncd(self) -> bool:
        """Annotated as syncd's (``workers/message`` starts with ``syncd:``). Only a hint: anyone can
        write that message, and not every write path takes annotations (see ``engine.drift``)."""
        return self.message.startswith(SYNCD_MESSAGE_PREFIX)

    @property
    def secret_names(self) -> frozenset[str] | None:
        if self.bindings is None:
            return None
        return frozenset(name for name, kind in self.bindings.items() if kind in SECRET_BINDING_TYPES)


@dataclass(frozen=True)
class WorkerDeployment:
    """The deployment serving traffic: (version id, percentage) pairs, one or two."""

    id: str
    created_on: str
    author_email: str
    source: str
    versions: tuple[tuple[str, float], ...] = field(default_factory=tuple)

    def fully_deployed(self) -> str | None:
        """The version id deployed at 100 %, or None during a gradual deployment."""
        for version_id, percentage in self.versions:
            if percentage >= 100:
                return version_id
        return None


@dataclass(frozen=True)
class StagedVersion:
    """The undeployed version ``stage_secrets`` created."""

    id: str
    number: int
