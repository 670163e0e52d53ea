"""``syncd.engine.drift.assess``: the drift decision, on values (no I/O)."""

from __future__ import annotations

from syncd.engine.drift import ScriptKnowledge, assess
from syncd.model import Target
from syncd.model_versions import WorkerDeployment, WorkerVersion

T = Target("0123456789abcdef0123456789abcdef", "edge")
OWNED = frozenset({"ONE", "TWO"})


def v(number: int, trigger: str = "secret", message: str = "", when: str = "2026-01-01T00:00:00Z") -> WorkerVersion:
    return WorkerVersion(f"id-{number}", number, when, "a@example.com", "u", "dash", trigger, message, None)


def know(
    last_seen: int | None = 3, own_writes: int = 0, since: float | None = None, staged: dict[str, int] | None = None
) -> ScriptKnowledge:
    return ScriptKnowledge(T, OWNED, last_seen, since, own_writes, staged or {})


def test_nothing_new_is_nothing() -> None:
    assert assess(know(), [], None, None).kind == "none"


def test_a_foreign_secret_version_is_an_overwrite_and_names_its_author() -> None:
    finding = assess(know(), [v(4)], OWNED, None)
    assert finding.kind == "overwritten" and finding.culprit == v(4) and finding.newest == 4


def test_syncd_own_writes_are_counted_out_marked_or_not() -> None:
    assert assess(know(own_writes=1), [v(4)], OWNED, None).kind == "none"
    assert assess(know(own_writes=0), [v(4, message="syncd: rotation")], OWNED, None).kind == "none"
    assert assess(know(own_writes=1), [v(5), v(4)], OWNED, None).kind == "overwritten"
    # marked and counted are the same write: not subtracted twice
    assert assess(know(own_writes=1), [v(5), v(4, message="syncd: x")], OWNED, None).kind == "overwritten"


def test_code_uploads_and_deployments_are_not_drift() -> None:
    assert assess(know(), [v(5, "deployment"), v(4, "upload")], OWNED, None).kind == "none"


def test_a_missing_owned_binding_is_missing_even_after_a_code_upload() -> None:
    finding = assess(know(), [v(4, "upload")], frozenset({"ONE", "THEIRS"}), None)
    assert (finding.kind, finding.missing) == ("missing", frozenset({"TWO"}))


def test_first_check_judges_by_the_last_push_time() -> None:
    since = 1767225600.0  # 2026-01-01T00:00:00Z
    old, new = v(3, when="2025-12-31T23:59:59Z"), v(4, when="2026-01-01T00:00:01Z")
    assert assess(know(last_seen=None, since=since), [old], OWNED, None).kind == "none"
    assert assess(know(last_seen=None, since=since), [new, old], OWNED, None).kind == "overwritten"


def test_a_staged_version_counts_once_it_or_a_later_one_is_fully_deployed() -> None:
    staged = know(staged={"edge": 5}, own_writes=1)
    gradual = WorkerDeployment("d", "", "", "", (("id-5", 10.0), ("id-4", 90.0)))
    full_later = WorkerDeployment("d", "", "", "", (("id-6", 100.0),))
    versions = [v(6, "upload"), v(5, message="syncd: staged"), v(4)]
    assert staged.list_from() == 3
    assert assess(staged, versions, OWNED, gradual).deployed_staged == frozenset()
    assert assess(staged, versions, OWNED, full_later).deployed_staged == frozenset({"edge"})
