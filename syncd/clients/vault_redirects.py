"""The redirect policy of every Vault transport (see ``syncd.clients.vault_connection`` for what
the official Vault client and hvac do, and why this is the policy): at most one redirect, of status
301, 302 or 307, never from ``https`` to anything else, and to another origin only when it keeps the
request's path and query (a Vault standby's redirect to the active node)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

REDIRECT_STATUSES = frozenset({301, 302, 307})  # what hashicorp/vault api/client.go follows


class RedirectRefused(Exception):
    """A redirect that would send the request (and its token) where it must not go."""

    def __init__(self, why: str, location: str) -> None:
        self.why = why
        self.origin = origin_text(location)
        super().__init__(f"redirect to {self.origin} refused: {why}")


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    default = {"https": 443, "wss": 443, "http": 80, "ws": 80}.get(scheme)
    return scheme, (parts.hostname or "").lower(), parts.port or default


def origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}" if scheme and host else "an unparsable location"


def redirect_target(status: int, request_url: str, location: str | None) -> str | None:
    """The URL to re-send a request to after a reply of ``status`` with ``location``; None when the
    reply is not a redirect to follow (any other status, no ``Location``). Raises
    ``RedirectRefused`` for a redirect that must not be followed (see the module docstring). The
    caller follows at most one."""
    if status not in REDIRECT_STATUSES or not location:
        return None
    target = urljoin(request_url, location.strip())
    old, new = origin(request_url), origin(target)
    if new[0] not in ("http", "https") or not new[1]:
        raise RedirectRefused("not an http(s) URL", target)
    if old[0] == "https" and new[0] != "https":
        raise RedirectRefused("it would downgrade https to plain http", target)
    if old != new:
        asked, given = urlsplit(request_url), urlsplit(target)
        if (asked.path, asked.query) != (given.path, given.query):
            raise RedirectRefused("another origin, and not a Vault standby's redirect (same path and query)", target)
    return target


__all__ = ["REDIRECT_STATUSES", "RedirectRefused", "origin", "origin_text", "redirect_target"]
