"""A tiny Dockerfile reader and the invariants the syncd image must keep.

Just enough of the Dockerfile grammar for the checks: comments and parser directives, backslash
continuations (with comment lines inside them skipped, as BuildKit does), JSON (exec) versus
shell form, and stages split at ``FROM``. Each ``check_*`` returns a list of problems (empty: fine)
so tests can run it on the real Dockerfile and on broken variants alike.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-cased: FROM, RUN, ...
    args: str  # the raw argument text, continuations joined with a space
    line: int  # 1-based line where the instruction starts

    def exec_form(self) -> list[str] | None:
        """The JSON array form (``["a", "b"]``), or None for shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None

    def flags_and_words(self) -> tuple[dict[str, str], list[str]]:
        """``--name=value`` flags and the remaining shell words."""
        flags: dict[str, str] = {}
        words: list[str] = []
        for word in shlex.split(self.args, comments=False, posix=True):
            if word.startswith("--") and not words:
                name, _, value = word[2:].partition("=")
                flags[name] = value
            else:
                words.append(word)
        return flags, words

    def key_values(self) -> dict[str, str]:
        """``ENV``/``LABEL``/``ARG`` pairs, in both ``k=v k2=v2`` and legacy ``ENV k v`` form."""
        words = shlex.split(self.args, posix=True)
        if not words:
            return {}
        if self.keyword == "ENV" and "=" not in words[0]:
            return {words[0]: self.args.strip().split(None, 1)[1] if len(words) > 1 else ""}
        pairs: dict[str, str] = {}
        for word in words:
            name, sep, value = word.partition("=")
            pairs[name] = value if sep else ""
        return pairs


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    preamble: list[Instruction]  # ARGs before the first FROM
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


_DIRECTIVE = re.compile(r"^#\s*[a-zA-Z]+\s*=")


def parse(text: str) -> Dockerfile:
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # comments (also inside continuations) and blank lines between instructions
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        joined = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    if pending:
        raise ValueError(f"line {start}: continuation runs past the end of the file")

    preamble: list[Instruction] = []
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            _, words = instruction.flags_and_words()
            if not words:
                raise ValueError(f"line {instruction.line}: FROM without an image")
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append(instruction)
        elif instruction.keyword == "ARG":
            preamble.append(instruction)
        else:
            raise ValueError(f"line {instruction.line}: {instruction.keyword} before the first FROM")
    if not stages:
        raise ValueError("no FROM: not a Dockerfile")
    return Dockerfile(preamble, stages)


# --- invariants -------------------------------------------------------------------------------------

_EXACT_VERSION = re.compile(r"(^|[^0-9])\d+\.\d+\.\d+([^0-9]|$)")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW(OR)?D|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|_KEY$|^KEY$", re.I)
_SECRET_VALUE = re.compile(
    r"(hvs\.|hvb\.|s\.[A-Za-z0-9]{20,}|gh[pousr]_|AKIA[0-9A-Z]{16}|-----BEGIN|xox[baprs]-|eyJ[A-Za-z0-9_-]{10,}\.)"
    r"|[A-Za-z0-9_\-+/=]{32,}"
)
_CREDENTIAL_FILE = re.compile(r"(\.pem|\.key|\.p12|\.pfx|\.env|token|secret|credential|id_rsa|\.npmrc|\.netrc)", re.I)
REQUIRED_LABELS = (
    "org.opencontainers.image.title",
    "org.opencontainers.image.source",
    "org.opencontainers.image.licenses",
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
)


def check_multi_stage(df: Dockerfile) -> list[str]:
    problems = []
    if len(df.stages) < 2:
        problems.append(f"expected a build stage and a runtime stage, found {len(df.stages)} stage(s)")
    earlier = {s.name for s in df.stages[:-1] if s.name} | {str(i) for i in range(len(df.stages) - 1)}
    copies_from_build = any(i.flags_and_words()[0].get("from") in earlier for i in df.final.all("COPY"))
    if not copies_from_build:
        problems.append("the final stage copies nothing from an earlier stage")
    return problems


def check_base_images_pinned(df: Dockerfile) -> list[str]:
    problems = []
    stage_names = set()
    for stage in df.stages:
        image = stage.image
        if image in stage_names or image == "scratch":
            pass
        elif "$" in image:
            problems.append(f"base image {image!r} is a build argument: pin it literally")
        elif _DIGEST.search(image):
            pass
        else:
            _, _, tag = image.rpartition("/")[2].partition(":")
            if not tag:
                problems.append(f"base image {image!r} has no tag (means latest)")
            elif tag == "latest" or not _EXACT_VERSION.search(tag):
                problems.append(f"base image {image!r} is not pinned to an exact version (x.y.z)")
        if stage.name:
            stage_names.add(stage.name)
    return problems


def check_final_user_numeric_non_root(df: Dockerfile) -> list[str]:
    users = df.final.all("USER")
    if not users:
        return ["the final stage sets no USER: it would run as root"]
    user = users[-1].args.strip()
    match = re.fullmatch(r"(\d+)(?::(\d+))?", user)
    if not match:
        return [f"final USER {user!r} is not numeric UID[:GID] (runAsNonRoot cannot verify names)"]
    if int(match.group(1)) == 0 or (match.group(2) is not None and int(match.group(2)) == 0):
        return [f"final USER {user!r} is root"]
    return []


def check_no_secrets_baked_in(df: Dockerfile) -> list[str]:
    problems = []
    everything = list(df.preamble) + [i for s in df.stages for i in s.instructions]
    for instruction in everything:
        if instruction.keyword in ("ENV", "ARG"):
            for name, value in instruction.key_values().items():
                if _SECRET_NAME.search(name):
                    problems.append(f"line {instruction.line}: {instruction.keyword} {name} looks like a credential")
                elif value and _SECRET_VALUE.search(value) and "$" not in value:
                    problems.append(f"line {instruction.line}: {instruction.keyword} {name} has a token-like value")
        if instruction.keyword in ("COPY", "ADD"):
            _, words = instruction.flags_and_words()
            for source in (instruction.exec_form() or words)[:-1]:
                if _CREDENTIAL_FILE.search(source):
                    problems.append(
                        f"line {instruction.line}: {instruction.keyword} {source!r} looks like a credential"
                    )
    return problems


def check_entrypoint_and_cmd(df: Dockerfile) -> list[str]:
    problems = []
    wanted = {"ENTRYPOINT": ["syncd"], "CMD": ["run", "--config", "/etc/syncd/config.toml"]}
    for keyword, expected in wanted.items():
        found = df.final.all(keyword)
        if not found:
            problems.append(f"the final stage has no {keyword}")
            continue
        form = found[-1].exec_form()
        if form != expected:
            problems.append(f"{keyword} is {found[-1].args!r}, expected exec form {json.dumps(expected)}")
    return problems


def check_exposes_http_port(df: Dockerfile) -> list[str]:
    ports = {p.split("/")[0] for i in df.final.all("EXPOSE") for p in i.args.split()}
    return [] if "8080" in ports else [f"the final stage does not EXPOSE 8080 (exposes {sorted(ports)})"]


def _pip_installs(df: Dockerfile) -> list[tuple[Instruction, list[str]]]:
    """Each ``pip install`` command of every RUN (split at ``&&``/``;``) as its shell words."""
    found = []
    for stage in df.stages:
        for run in stage.all("RUN"):
            for command in re.split(r"&&|;", run.args):
                words = shlex.split(command, posix=True)
                if "pip" in words and words[words.index("pip") + 1 : words.index("pip") + 2] == ["install"]:
                    found.append((run, words[words.index("pip") + 2 :]))
    return found


def check_pip_installs_only_hashed_locks(df: Dockerfile, lock: str = "requirements-runtime.txt") -> list[str]:
    """Every download is hash-checked: dependencies come from ``--require-hashes -r LOCK`` and the
    project itself is installed with ``--no-deps`` (pip refuses an unhashed local project in
    hash-checking mode, so it gets nothing more from the index)."""
    problems = []
    installs = _pip_installs(df)
    if not installs:
        problems.append("no RUN pip install: the project is not installed from its metadata")
    copied = " ".join(i.args for s in df.stages for i in s.all("COPY"))
    installed_from_lock = False
    for run, words in installs:
        positional = [w for i, w in enumerate(words) if not w.startswith("-") and words[i - 1] not in ("-r", "-c")]
        if "-r" in words:
            requirements = words[words.index("-r") + 1]
            if "--require-hashes" not in words:
                problems.append(f"line {run.line}: pip install -r {requirements} without --require-hashes")
            if positional:
                problems.append(f"line {run.line}: pip install names {positional} beside the hashed lock")
            if requirements.rsplit("/", 1)[-1] not in copied:
                problems.append(f"line {run.line}: {requirements} is never copied into the build")
            installed_from_lock |= requirements.endswith(lock)
        elif "--no-deps" in words and positional == ["."]:
            if "--no-build-isolation" not in words:
                problems.append(f"line {run.line}: building . with isolation downloads unpinned build requirements")
        else:
            problems.append(f"line {run.line}: pip install {' '.join(words)} is neither a hashed lock nor --no-deps .")
    if installs and not installed_from_lock:
        problems.append(f"the dependencies are never installed from {lock} (--require-hashes -r {lock})")
    return problems


def check_oci_labels(df: Dockerfile) -> list[str]:
    labels: dict[str, str] = {}
    for label in df.final.all("LABEL"):
        labels.update(label.key_values())
    return [f"missing label {name}" for name in REQUIRED_LABELS if not labels.get(name)]


def check_no_bytecode_writes(df: Dockerfile) -> list[str]:
    env: dict[str, str] = {}
    for instruction in df.final.all("ENV"):
        env.update(instruction.key_values())
    if env.get("PYTHONDONTWRITEBYTECODE") != "1":
        return ["the runtime does not set PYTHONDONTWRITEBYTECODE=1 (read-only root filesystem)"]
    return []


ALL_CHECKS = (
    check_multi_stage,
    check_base_images_pinned,
    check_final_user_numeric_non_root,
    check_no_secrets_baked_in,
    check_entrypoint_and_cmd,
    check_exposes_http_port,
    check_pip_installs_only_hashed_locks,
    check_oci_labels,
    check_no_bytecode_writes,
)
