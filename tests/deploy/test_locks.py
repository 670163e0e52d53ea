"""The hashed dependency locks agree with each other and with pyproject.toml.

``constraints.txt`` (everything CI installs, ``--require-hashes``) and ``requirements-runtime.txt``
(what the image installs) are written by ``scripts/lock-dependencies.sh``. Every entry is pinned
exactly with at least one sha256; the runtime lock is a part of constraints.txt with the same
versions and hashes (so the image runs what the tests ran); it holds every runtime dependency and
no test or dev tool; the build requirements are pinned exactly in pyproject.toml, to the versions
both locks hold.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
Lock = dict[str, tuple[str, frozenset[str]]]

_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def parse_lock(text: str) -> Lock:
    """{normalised name: (version, sha256 hashes)}; raises on a line pip would not hash-check."""
    entries: Lock = {}
    logical = re.sub(r"\\\n\s*", " ", text)
    for raw in logical.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _ENTRY.match(line)
        if not match:
            raise ValueError(f"not an exact, hashed pin: {line!r}")
        hashes = frozenset(_HASH.findall(line))
        if not hashes:
            raise ValueError(f"{match.group(1)} has no sha256 hash")
        entries[_name(match.group(1))] = (match.group(3), hashes)
    return entries


def lock(name: str) -> Lock:
    return parse_lock((ROOT / name).read_text(encoding="utf-8"))


def _requirement_name(spec: str) -> str:
    return _name(re.split(r"[\s;<>=!~\[(]", spec, maxsplit=1)[0])


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "name", ["constraints.txt", "requirements-runtime.txt", "deploy/image/sbom-requirements.txt", "scripts/pip.lock"]
)
def test_every_entry_is_an_exact_pin_with_hashes_and_only_pypi(name: str) -> None:
    text = (ROOT / name).read_text(encoding="utf-8")
    assert parse_lock(text), f"{name} pins nothing"
    for option in ("--find-links", "--index-url", "--extra-index-url", "file://", "-e "):
        assert option not in text, f"{name} carries {option!r}: a machine-local source or an unhashed install"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hvac==2.4.0\n", "no sha256"),
        ("hvac>=2.4 --hash=sha256:" + "a" * 64 + "\n", "not an exact"),
        ("-e .\n", "not an exact"),
    ],
)
def test_the_lock_reader_refuses_what_pip_would_not_hash_check(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_lock(text)


def test_runtime_lock_is_a_part_of_constraints_with_the_same_versions_and_hashes() -> None:
    everything, runtime = lock("constraints.txt"), lock("requirements-runtime.txt")
    assert set(runtime) <= set(everything), set(runtime) - set(everything)
    for name, (version, hashes) in runtime.items():
        assert everything[name][0] == version, f"{name}: {version} in the image, {everything[name][0]} in CI"
        assert everything[name][1] == hashes, f"{name}: the two locks trust different files"


def test_runtime_lock_holds_every_runtime_dependency_and_no_tool() -> None:
    runtime = lock("requirements-runtime.txt")
    for spec in PYPROJECT["project"]["dependencies"]:
        assert _requirement_name(spec) in runtime, f"{spec} is not in requirements-runtime.txt"
    extras = PYPROJECT["project"]["optional-dependencies"]
    tools = {_requirement_name(s) for specs in extras.values() for s in specs} - {"syncd"}
    assert tools, "no test or dev tools read from pyproject.toml"
    assert not tools & set(runtime), f"test/dev tools in the image's lock: {sorted(tools & set(runtime))}"
    everything = lock("constraints.txt")
    assert tools <= set(everything), f"missing from constraints.txt: {sorted(tools - set(everything))}"


def test_build_requirements_are_pinned_exactly_to_what_the_locks_hold() -> None:
    requires = PYPROJECT["build-system"]["requires"]
    assert requires and all(re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][^,;<>=!~\s]*", r) for r in requires), requires
    for spec in requires:
        name, version = _requirement_name(spec), spec.split("==")[1]
        for file in ("constraints.txt", "requirements-runtime.txt"):
            assert lock(file)[name][0] == version, f"{file} holds {name} {lock(file)[name][0]}, pyproject {version}"


def test_setup_dev_installs_nothing_unhashed_from_an_index() -> None:
    """Every ``pip install`` of the development setup (so of CI) reads a hashed lock, the pip it
    upgrades to included; only the checkout itself goes in without hashes (--no-deps)."""
    script = (ROOT / "scripts/setup-dev.sh").read_text(encoding="utf-8")
    installs = [
        line.strip() for line in script.splitlines() if "pip install" in line and not line.lstrip().startswith("#")
    ]
    assert len(installs) == 3
    for line in installs:
        assert "--require-hashes -r " in line or "--no-deps" in line, line
    assert "--upgrade" not in script
