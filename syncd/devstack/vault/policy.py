"""ACL policies: parsing HCL (or JSON) ``path`` blocks and Vault's matching rules.

Matching follows Vault's documented priority (``vault/policy.go`` / docs "Policies: Priority
matching"): an exact path rule wins; otherwise among the matching glob (``*`` suffix) and
wildcard (``+`` segment) rules, P1 has *lower* priority than P2 when

1. the first ``+`` or ``*`` occurs earlier in P1,
2. P1 ends in ``*`` and P2 does not,
3. P1 has more ``+`` segments,
4. P1 is shorter,
5. P1 is smaller lexicographically.

Only the winning rule's capabilities apply; ``deny`` in it refuses everything. Rules for the
same path string in several policies of one token are merged (union; ``deny`` wins), as Vault does.
The parser understands the subset of HCL policies use: ``path "..." { capabilities = [...] }``,
the legacy ``policy = "read|write|deny|sudo"``, comments, and nested blocks it ignores
(``allowed_parameters`` etc.).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from syncd.devstack.vault.wire import VaultError

VALID_CAPABILITIES = frozenset(
    {"create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe", "recover"}
)
_LEGACY_POLICY = {
    "deny": {"deny"},
    "read": {"read", "list"},
    "write": {"create", "read", "update", "delete", "list"},
    "sudo": {"create", "read", "update", "delete", "list", "sudo"},
}

DEFAULT_POLICY = """
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to renew a lease via lease_id in the request body
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
"""

# The policy of wrapping tokens (vault/policy_store.go): built in, not listed, not assignable.
RESPONSE_WRAPPING_POLICY = """
path "cubbyhole/response" {
    capabilities = ["create", "read"]
}

path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
"""


@dataclass(frozen=True)
class PathRule:
    pattern: str
    capabilities: frozenset[str]

    @property
    def is_exact(self) -> bool:
        return not self.pattern.endswith("*") and "+" not in self.pattern.split("/")

    def matches(self, path: str) -> bool:
        return _compile(self.pattern).fullmatch(path) is not None


def _compile(pattern: str) -> re.Pattern[str]:
    glob = pattern.endswith("*")
    body = pattern[:-1] if glob else pattern
    parts = [r"[^/]*" if segment == "+" else re.escape(segment) for segment in body.split("/")]
    return re.compile("/".join(parts) + (".*" if glob else ""))


def _first_wildcard(pattern: str) -> int:
    positions = [i for i, char in enumerate(pattern) if char in "+*"]
    return positions[0] if positions else len(pattern)


def _priority_key(pattern: str) -> tuple[int, int, int, int, str]:
    """Bigger sorts higher: later first wildcard, no trailing *, fewer +, longer, larger."""
    return (
        _first_wildcard(pattern),
        0 if pattern.endswith("*") else 1,
        -pattern.split("/").count("+"),
        len(pattern),
        pattern,
    )


def _strip_comments(text: str) -> str:
    lines = []
    for line in text.splitlines():
        out, in_string = [], False
        for index, char in enumerate(line):
            if char == '"' and (index == 0 or line[index - 1] != "\\"):
                in_string = not in_string
            if not in_string and (char == "#" or line[index : index + 2] == "//"):
                break
            out.append(char)
        lines.append("".join(out))
    return "\n".join(lines)


def _block_end(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise VaultError(400, "failed to parse policy: unbalanced braces")


def _capabilities_from_block(pattern: str, block: str) -> frozenset[str]:
    top_level = re.sub(r"\{[^{}]*\}", "", block)
    caps: set[str] = set()
    listed = re.search(r"capabilities\s*=\s*\[(.*?)\]", top_level, re.DOTALL)
    if listed:
        caps.update(re.findall(r'"([^"]*)"', listed.group(1)))
    legacy = re.search(r'policy\s*=\s*"([^"]*)"', top_level)
    if legacy:
        if legacy.group(1) not in _LEGACY_POLICY:
            raise VaultError(400, f'failed to parse policy: path "{pattern}": invalid policy "{legacy.group(1)}"')
        caps.update(_LEGACY_POLICY[legacy.group(1)])
    return _validated(pattern, caps)


def _validated(pattern: str, caps: set[str]) -> frozenset[str]:
    unknown = sorted(caps - VALID_CAPABILITIES)
    if unknown:
        raise VaultError(400, f'failed to parse policy: path "{pattern}": invalid capability "{unknown[0]}"')
    return frozenset({"deny"} if "deny" in caps else caps)


def parse_policy(text: str) -> list[PathRule]:
    """The path rules of one policy document (HCL or JSON). Raises VaultError(400) when malformed."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return _parse_json_policy(stripped)
    body = _strip_comments(text)
    rules: list[PathRule] = []
    position = 0
    header = re.compile(r'path\s+"([^"]*)"\s*=?\s*\{')
    while True:
        found = header.search(body, position)
        if found is None:
            break
        end = _block_end(body, found.end() - 1)
        rules.append(PathRule(found.group(1), _capabilities_from_block(found.group(1), body[found.end() : end])))
        position = end + 1
    leftover = header.sub("", body)
    if not rules and leftover.strip():
        raise VaultError(400, "failed to parse policy: no path blocks found")
    return rules


def _parse_json_policy(text: str) -> list[PathRule]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise VaultError(400, f"failed to parse policy: {exc}") from exc
    paths = document.get("path", {}) if isinstance(document, dict) else {}
    rules = []
    for pattern, block in paths.items():
        caps = set(block.get("capabilities", []))
        if "policy" in block:
            caps.update(_LEGACY_POLICY.get(str(block["policy"]), set()))
        rules.append(PathRule(pattern, _validated(pattern, caps)))
    return rules


class Acl:
    """The merged rules of a token's policies; answers which capabilities a path has."""

    def __init__(self, documents: list[str], *, root: bool = False) -> None:
        self.root = root
        merged: dict[str, set[str]] = {}
        for document in documents:
            for rule in parse_policy(document):
                merged.setdefault(rule.pattern, set()).update(rule.capabilities)
        self.rules = [
            PathRule(pattern, frozenset({"deny"} if "deny" in caps else caps)) for pattern, caps in merged.items()
        ]

    def capabilities(self, path: str) -> frozenset[str]:
        if self.root:
            return frozenset({"root"})
        for rule in self.rules:
            if rule.is_exact and rule.pattern == path:
                return rule.capabilities
        matching = [rule for rule in self.rules if not rule.is_exact and rule.matches(path)]
        if not matching:
            return frozenset()
        best = max(matching, key=lambda rule: _priority_key(rule.pattern))
        return best.capabilities

    def allows(self, path: str, capability: str, *, sudo: bool = False) -> bool:
        if self.root:
            return True
        caps = self.capabilities(path)
        if "deny" in caps or capability not in caps:
            return False
        return not sudo or "sudo" in caps

    def touches_prefix(self, prefix: str) -> bool:
        """Whether any non-deny rule could apply below ``prefix`` (for the UI mounts preflight)."""
        if self.root:
            return True
        for rule in self.rules:
            if "deny" in rule.capabilities or not rule.capabilities:
                continue
            literal = rule.pattern[: _first_wildcard(rule.pattern)]
            if literal.startswith(prefix) or prefix.startswith(literal):
                return True
        return False
