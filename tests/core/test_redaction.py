"""``syncd.redaction``: what an upstream said is kept only scrubbed, and known credentials never."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import hvac.exceptions as hx
import pytest

from syncd.clients.cloudflare_errors import error_for, parse_page
from syncd.clients.vault_calls import reply_error, vault_reason
from syncd.clients.vault_http import HttpReply
from syncd.redaction import (
    HEADER_MASK,
    MASK,
    forget_credentials,
    remember_credential,
    scrub_error,
    scrub_text,
    upstream_message,
)

CF_TOKEN = "cf-token-canary-6d1f0a9e2b"


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    forget_credentials()
    yield
    forget_credentials()


def test_a_remembered_credential_is_masked_anywhere_in_free_text() -> None:
    remember_credential(CF_TOKEN)
    assert scrub_text(f"upstream said: bad token {CF_TOKEN}!") == f"upstream said: bad token {MASK}!"
    assert CF_TOKEN not in scrub_error(f"x{CF_TOKEN}y")


def test_short_values_are_not_remembered_so_words_stay_whole() -> None:
    remember_credential("abc")
    assert scrub_text("abc abcdef") == "abc abcdef"


def test_only_the_most_recent_credentials_are_kept() -> None:
    for n in range(100):
        remember_credential(f"rotated-token-{n:04d}")
    assert scrub_text("rotated-token-0099") == MASK
    assert scrub_text("rotated-token-0000") == "rotated-token-0000"


def test_header_like_content_is_removed_whatever_the_header() -> None:
    page = "502 Bad Gateway\nX-Vault-Token: s.abc\nX-Custom-Secret: 1234\nAuthorization: Basic xyz\nplain words"
    kept = scrub_error(page)
    assert "s.abc" not in kept and "1234" not in kept and "xyz" not in kept
    assert kept.count(HEADER_MASK) == 3
    assert kept.startswith("502 Bad Gateway") and kept.endswith("plain words")


def test_an_upstream_message_is_cut_short_and_blank_is_empty() -> None:
    assert len(upstream_message("x" * 5000)) <= 300
    assert upstream_message(None) == "" and upstream_message("") == ""


def test_vault_keeps_only_its_envelope_errors_never_an_error_page() -> None:
    page = HttpReply(502, {"Content-Type": "text/html"}, b"<pre>X-Vault-Token: hvs.secret-token-value</pre>")
    assert reply_error(page).reason == "BadGateway"
    envelope = HttpReply(403, {"Content-Type": "application/json"}, b'{"errors": ["permission denied"]}')
    assert reply_error(envelope).reason == "permission denied"


def test_hvac_exceptions_from_a_response_keep_no_body_text() -> None:
    from_page = hx.BadGateway("<pre>Cookie: session=abc</pre>", text="<pre>Cookie: session=abc</pre>")
    assert vault_reason(from_page) == "BadGateway"
    with_errors = hx.Forbidden(errors=["permission denied"], text="{}")
    assert vault_reason(with_errors) == "permission denied"


def test_a_cloudflare_message_echoing_a_known_token_is_scrubbed() -> None:
    remember_credential(CF_TOKEN)
    body = {"success": False, "errors": [{"code": 10000, "message": f"Authentication error: {CF_TOKEN}"}]}
    _, failure, _ = parse_page(httpx.Response(403, json=body))
    assert failure is not None
    error = error_for(failure, method="GET", path="/accounts/x")
    assert CF_TOKEN not in str(error) and error.code == 10000 and "Authentication error" in str(error)


def test_our_own_message_with_a_hyphenated_name_before_a_colon_stays_whole() -> None:
    message = "Cloudflare PATCH /accounts/a/workers/scripts/app-worker: HTTP 409, code 10214: not deployed"
    assert scrub_error(message) == message


def test_an_echoed_page_on_one_line_loses_its_x_headers() -> None:
    kept = scrub_error("<html><pre>GET /v1/x</pre> X-Forwarded-For: 10.0.0.1 X-Request-Id: abc</html>")
    assert "10.0.0.1" not in kept and "abc" not in kept
