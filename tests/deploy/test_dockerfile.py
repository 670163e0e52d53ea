"""The container image's invariants, read from the Dockerfile (no Docker daemon needed).

Each check runs on the real Dockerfile (must pass) and on a broken variant (must fail), so a
check that silently accepts everything cannot hide here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy import dockerfile as d

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")

Check = Callable[[d.Dockerfile], list[str]]


def _replace(old: str, new: str) -> str:
    assert old in DOCKERFILE, f"fixture drifted: {old!r} is not in the Dockerfile"
    return DOCKERFILE.replace(old, new)


def test_parser_joins_continuations_skips_comments_and_splits_stages() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=x\n"
        "FROM python:3.11.9-slim AS build\n"
        "RUN apt-get update \\\n"
        "    # a comment inside a continuation\n"
        "    && apt-get install -y gcc\n"
        "FROM python:3.11.9-slim\n"
        'ENTRYPOINT ["syncd"]\n'
    )
    df = d.parse(text)
    assert [i.keyword for i in df.preamble] == ["ARG"]
    assert [(s.image, s.name) for s in df.stages] == [("python:3.11.9-slim", "build"), ("python:3.11.9-slim", None)]
    (run,) = df.stages[0].all("RUN")
    assert run.args == "apt-get update && apt-get install -y gcc"
    assert run.line == 4
    assert df.final.all("ENTRYPOINT")[0].exec_form() == ["syncd"]


def test_parser_reads_env_in_both_forms() -> None:
    df = d.parse('FROM a:1.2.3\nENV A=1 B="two words"\nENV LEGACY some value\n')
    first, second = df.final.all("ENV")
    assert first.key_values() == {"A": "1", "B": "two words"}
    assert second.key_values() == {"LEGACY": "some value"}


def test_parser_rejects_a_dangling_continuation() -> None:
    with pytest.raises(ValueError, match="continuation"):
        d.parse("FROM a:1.2.3\nRUN true \\\n")


@pytest.mark.parametrize("check", d.ALL_CHECKS, ids=lambda c: c.__name__)
def test_real_dockerfile_passes(check: Check) -> None:
    assert check(d.parse(DOCKERFILE)) == []


# (check, text to replace in the real Dockerfile (None: replace it all), replacement, a word the problem names)
BROKEN: list[tuple[Check, str | None, str, str]] = [
    (d.check_multi_stage, None, "FROM python:3.11.14-slim\nRUN pip install -c constraints.txt .\n", "stage"),
    (d.check_multi_stage, "COPY --from=build /opt/syncd", "COPY /opt/syncd", "copies nothing"),
    (d.check_base_images_pinned, "AS runtime", "AS runtime\nFROM python:latest", "not pinned"),
    (d.check_base_images_pinned, "python:3.11.14-slim-bookworm AS build", "python:3 AS build", "not pinned"),
    (d.check_base_images_pinned, "python:3.11.14-slim-bookworm AS build", "python AS build", "no tag"),
    (d.check_base_images_pinned, "python:3.11.14-slim-bookworm AS build", "python:3.11-slim AS build", "not pinned"),
    (
        d.check_base_images_pinned,
        "FROM python:3.11.14-slim-bookworm AS build",
        "ARG B=python:3.11.14\nFROM ${B} AS build",
        "build argument",
    ),
    (d.check_final_user_numeric_non_root, "USER 10001:10001", "USER syncd", "numeric"),
    (d.check_final_user_numeric_non_root, "USER 10001:10001", "USER 0", "root"),
    (d.check_final_user_numeric_non_root, "USER 10001:10001", "USER 10001:0", "root"),
    (d.check_final_user_numeric_non_root, "USER 10001:10001\n", "", "no USER"),
    (d.check_no_secrets_baked_in, "PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=1 CLOUDFLARE_API_TOKEN=abc", "credential"),
    (d.check_no_secrets_baked_in, "ARG REVISION=unknown", "ARG VAULT_TOKEN", "credential"),
    (d.check_no_secrets_baked_in, "ARG REVISION=unknown", "ARG REVISION=hvs.CAESIJ3vbnm", "token-like"),
    (
        d.check_no_secrets_baked_in,
        "ARG REVISION=unknown",
        "ENV SETTING=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0",
        "token-like",
    ),
    (
        d.check_no_secrets_baked_in,
        "COPY syncd ./syncd",
        "COPY syncd ./syncd\nCOPY cloudflare-token /etc/t",
        "credential",
    ),
    (d.check_no_secrets_baked_in, "COPY syncd ./syncd", "COPY .env /src/.env", "credential"),
    (d.check_entrypoint_and_cmd, 'ENTRYPOINT ["syncd"]', "ENTRYPOINT syncd", "ENTRYPOINT"),
    (d.check_entrypoint_and_cmd, 'CMD ["run", "--config", "/etc/syncd/config.toml"]', 'CMD ["run"]', "CMD"),
    (d.check_entrypoint_and_cmd, 'ENTRYPOINT ["syncd"]\n', "", "no ENTRYPOINT"),
    (d.check_exposes_http_port, "EXPOSE 8080", "EXPOSE 9090", "8080"),
    (
        d.check_pip_installs_only_hashed_locks,
        "--require-hashes -r requirements-runtime.txt",
        "-r requirements-runtime.txt",
        "--require-hashes",
    ),
    (
        d.check_pip_installs_only_hashed_locks,
        "--require-hashes -r requirements-runtime.txt",
        "-c constraints.txt .",
        "neither",
    ),
    (d.check_pip_installs_only_hashed_locks, "--no-deps --no-build-isolation .", "--no-build-isolation .", "neither"),
    (d.check_pip_installs_only_hashed_locks, "--no-deps --no-build-isolation .", "--no-deps .", "isolation"),
    (
        d.check_pip_installs_only_hashed_locks,
        "-r requirements-runtime.txt",
        "-r requirements-runtime.txt hvac",
        "beside",
    ),
    (
        d.check_pip_installs_only_hashed_locks,
        "COPY requirements-runtime.txt ./",
        "COPY pyproject.toml ./",
        "never copied",
    ),
    (d.check_oci_labels, "org.opencontainers.image.source=", "org.example.source=", "image.source"),
    (d.check_oci_labels, 'image.licenses="Apache-2.0"', 'image.licenses=""', "licenses"),
    (
        d.check_no_bytecode_writes,
        "    PYTHONDONTWRITEBYTECODE=1 \\\n    PYTHONUNBUFFERED",
        "    PYTHONUNBUFFERED",
        "BYTECODE",
    ),
]


@pytest.mark.parametrize(
    ("check", "old", "new", "mentions"), BROKEN, ids=[f"{c.__name__}-{i}" for i, (c, *_) in enumerate(BROKEN)]
)
def test_check_catches_a_broken_dockerfile(check: Check, old: str | None, new: str, mentions: str) -> None:
    broken = new if old is None else _replace(old, new)
    problems = check(d.parse(broken))
    assert problems, f"{check.__name__} accepted a broken Dockerfile"
    assert any(mentions in p for p in problems), problems


def test_ci_and_the_image_install_hash_checked_locks() -> None:
    setup = (ROOT / "scripts" / "setup-dev.sh").read_text(encoding="utf-8")
    assert "--require-hashes -r constraints.txt" in setup
    assert "--require-hashes -r requirements-runtime.txt" in DOCKERFILE
    # tests/deploy/test_locks.py checks that the runtime lock is a part of constraints.txt


def test_constraints_pin_every_runtime_dependency_exactly() -> None:
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line
    }
    for dependency in ("hvac", "apscheduler", "httpx", "structlog", "prometheus-client", "pydantic", "stamina"):
        assert dependency in pinned, f"{dependency} is not pinned in constraints.txt"


def test_dockerignore_keeps_local_state_and_environments_out_of_the_context() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for pattern in (".git", ".venv", ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.sqlite3", ".env"):
        assert pattern in ignored, f".dockerignore does not exclude {pattern}"
    for needed in ("syncd", "pyproject.toml", "requirements-runtime.txt", "README.md"):
        assert needed not in ignored, f".dockerignore excludes {needed}, which the build copies"
