"""Drift: did someone else change the secrets syncd owns on a Worker? Pure logic, no I/O.

syncd cannot read a secret's value back, so it judges by what Cloudflare reports about versions:

- **missing**: an owned binding name is absent from the latest version (a hand delete, or a code
  upload that dropped the secrets) -> re-create the missing bindings;
- **overwritten**: a version that changed secrets (``workers/triggered_by`` other than ``upload`` /
  ``deployment`` / ``rollback``) and that syncd did not make -> re-push all of the script's owned
  bindings, in one call;
- a code upload or deployment that keeps the secrets is not drift;
- a staged version (``on_undeployed = "stage"``) deployed at 100 %, or a later version deployed at
  100 %, makes its mappings in sync.

Which versions syncd made: by counting. The app passes how many write calls syncd had confirmed
on the script since the last check (every bulk PATCH, PUT, DELETE or staging call makes exactly one
version); versions annotated ``workers/message: "syncd: ..."`` (what syncd sends where the API
takes annotations: ``versions/latest``) are syncd's too. Foreign secret versions are those beyond
that: ``unmarked - max(0, own_writes - marked)``. Limits, documented in the README:

- a write whose outcome syncd never learnt (a timeout that Cloudflare applied) is not counted:
  it looks foreign once and costs one harmless re-push;
- after a restart the counts are gone: versions newer than the script's latest recorded push
  (``since``) that are not annotated as syncd's count as foreign (again at most one re-push);
- anyone may write a "syncd:" message; a hand edit doing so hides from this check (not from the
  missing-binding check);
- a settings edit by someone else (``triggered_by = settings``) may not have touched secrets; it is
  treated as a secret change (one harmless re-push);
- a rollback deployment to an older version is not detected as drift (the next rotation is refused
  with 10214/10215 and handled by ``on_undeployed``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from syncd.model import Target
from syncd.model_versions import WorkerDeployment, WorkerVersion

NON_SECRET_TRIGGERS = frozenset({"upload", "deployment", "rollback"})


@dataclass(frozen=True, slots=True)
class DriftCorrection:
    """Bindings on one destination that someone else changed or removed, to be written again.

    An input of ``Reconciler.reconcile``: the reconciler re-reads Vault for the mappings that own
    these bindings and the planner writes them whatever their recorded fingerprint (``Reason.DRIFT``).
    Nothing is planted in the state: a correction lives until a cycle confirmed its write.
    """

    target: Target
    names: frozenset[str]
    why: str  # e.g. "missing", "changed by someone else": for logs and /status, never a value
    found_at: float  # epoch seconds

DriftKind = Literal["none", "missing", "overwritten"]


@dataclass(frozen=True)
class ScriptKnowledge:
    """What syncd recorded about one script."""

    target: Target
    owned: frozenset[str]  # binding names syncd owns there
    last_seen: int | None  # newest version number the previous check saw (None: never checked)
    since: float | None  # with last_seen None: the latest recorded push of an owned binding (epoch s)
    own_writes: int = 0  # syncd's confirmed write calls on the script since the previous check
    staged: Mapping[str, int] = field(default_factory=dict)  # mapping -> staged version number

    def list_from(self) -> int | None:
        """List versions newer than this: the last seen, or earlier to find a staged version."""
        floor = self.last_seen
        if self.staged:
            lowest = min(self.staged.values()) - 1
            floor = lowest if floor is None else min(floor, lowest)
        return floor


@dataclass(frozen=True)
class DriftFinding:
    kind: DriftKind
    target: Target
    missing: frozenset[str] = frozenset()
    culprit: WorkerVersion | None = None  # the newest foreign secret version, for the log line
    newest: int | None = None  # the newest version number seen: the next check's last_seen
    deployed_staged: frozenset[str] = frozenset()  # mappings whose staged version is now deployed
    changed: frozenset[str] = frozenset()  # names someone else changed, where the kind tells them apart (a store)

    @property
    def drifted(self) -> bool:
        return self.kind != "none"


def _epoch(created_on: str) -> float | None:
    try:
        return datetime.fromisoformat(created_on.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def is_new(version: WorkerVersion, knowledge: ScriptKnowledge) -> bool:
    if knowledge.last_seen is not None:
        return version.number > knowledge.last_seen
    if knowledge.since is None:
        return False  # never pushed, never checked: nothing of syncd's to protect yet
    created = _epoch(version.created_on)
    return created is not None and created > knowledge.since


def changes_secrets(version: WorkerVersion) -> bool:
    return version.triggered_by not in NON_SECRET_TRIGGERS


def assess(
    knowledge: ScriptKnowledge,
    versions: Sequence[WorkerVersion],
    latest_secret_names: frozenset[str] | None,
    deployment: WorkerDeployment | None,
) -> DriftFinding:
    """Decide on one script. ``versions``: newest first, at least those newer than ``list_from()``;
    ``latest_secret_names``: the secret names of the newest version (None when unknown: no
    missing-binding check); ``deployment``: the one serving (needed only for staged mappings)."""
    newest = versions[0].number if versions else knowledge.last_seen
    deployed_staged = _deployed_staged(knowledge, versions, deployment)
    fresh = [v for v in versions if is_new(v, knowledge) and changes_secrets(v)]
    marked = sum(1 for v in fresh if v.by_syncd)
    unmarked = [v for v in fresh if not v.by_syncd]
    foreign = len(unmarked) - max(0, knowledge.own_writes - marked)
    missing = knowledge.owned - latest_secret_names if latest_secret_names is not None else frozenset()
    culprit = unmarked[0] if unmarked else (versions[0] if versions else None)
    if missing:
        return DriftFinding("missing", knowledge.target, frozenset(missing), culprit, newest, deployed_staged)
    if foreign > 0 and knowledge.owned:
        return DriftFinding("overwritten", knowledge.target, frozenset(), unmarked[0], newest, deployed_staged)
    return DriftFinding("none", knowledge.target, newest=newest, deployed_staged=deployed_staged)


def _deployed_staged(
    knowledge: ScriptKnowledge, versions: Sequence[WorkerVersion], deployment: WorkerDeployment | None
) -> frozenset[str]:
    if not knowledge.staged or deployment is None:
        return frozenset()
    full = deployment.fully_deployed()
    number = next((v.number for v in versions if v.id == full), None)
    if number is None:
        return frozenset()
    return frozenset(mapping for mapping, staged in knowledge.staged.items() if number >= staged)
