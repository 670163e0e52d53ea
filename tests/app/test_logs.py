"""The logging pipeline: JSON lines, stdlib loggers in the same shape, redaction, tracebacks without locals."""

from __future__ import annotations

import io
import logging
import re
import secrets
from datetime import datetime
from typing import Any

import pytest
import structlog

from syncd.app.service.logs import SENSITIVE_KEYS, configure_logging, redact_processor
from syncd.model import MASK, SecretBody, SecretData, SecretValue
from tests.app.conftest import LogCapture


def _canary() -> str:
    # Built at run time, so the literal never sits in a source line a traceback could quote.
    return "canary-" + secrets.token_hex(8)


def _redact(**event: Any) -> dict[str, Any]:
    return dict(redact_processor(None, "info", dict(event)))


class _TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- shape of a line -------------------------------------------------------------------------------


def test_structlog_line_is_json_with_utc_iso_timestamp_level_logger_and_event(json_logs: LogCapture) -> None:
    structlog.get_logger("syncd.engine").info("push confirmed", mapping="api-keys", script="edge", version=7)

    [line] = json_logs.events("push confirmed")
    assert line["level"] == "info"
    assert line["logger"] == "syncd.engine"
    assert (line["mapping"], line["script"], line["version"]) == ("api-keys", "edge", 7)
    assert line["timestamp"].endswith("Z")
    assert datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).utcoffset() is not None


@pytest.mark.parametrize("library", ["hvac", "urllib3", "requests", "apscheduler.scheduler"])
def test_stdlib_logger_line_is_json_with_the_same_keys(json_logs: LogCapture, library: str) -> None:
    structlog.get_logger("syncd.app").warning("from structlog")
    logging.getLogger(library).warning("from %s", "stdlib")

    [ours] = json_logs.events("from structlog")
    [theirs] = json_logs.events("from stdlib")
    assert theirs["logger"] == library
    assert theirs["level"] == "warning"
    assert set(ours) == set(theirs)


def test_bound_context_reaches_structlog_and_stdlib_lines(json_logs: LogCapture) -> None:
    structlog.contextvars.bind_contextvars(cycle_id="c-42", mapping="api-keys")
    structlog.get_logger("syncd.engine").info("planning")
    logging.getLogger("hvac").warning("library line")

    for event in ("planning", "library line"):
        [line] = json_logs.events(event)
        assert (line["cycle_id"], line["mapping"]) == ("c-42", "api-keys")


def test_httpx_request_lines_and_apscheduler_job_lines_are_quieted(json_logs: LogCapture) -> None:
    configure_logging(format="json", level="info", stream=json_logs.stream)
    logging.getLogger("httpx").info('HTTP Request: PATCH https://api.cloudflare.com "HTTP/1.1 200 OK"')
    logging.getLogger("httpcore.connection").info("connect_tcp.started")
    logging.getLogger("apscheduler.executors.default").info('Running job "cycle"')
    logging.getLogger("httpx").warning("httpx warning still shows")
    logging.getLogger("apscheduler.executors.default").error("job raised")

    events = [line["event"] for line in json_logs.lines()]
    assert events == ["httpx warning still shows", "job raised"]


def test_level_filters_structlog_and_stdlib_lines(json_logs: LogCapture) -> None:
    configure_logging(format="json", level="warning", stream=json_logs.stream)
    structlog.get_logger("syncd").info("hidden info")
    logging.getLogger("hvac").info("hidden stdlib info")
    structlog.get_logger("syncd").warning("shown")

    assert [line["event"] for line in json_logs.lines()] == ["shown"]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(level="verbose", stream=io.StringIO())


def test_reconfiguring_replaces_the_handler_instead_of_doubling_lines() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(format="json", stream=first)
    configure_logging(format="json", stream=second)
    structlog.get_logger("syncd").info("once")

    assert first.getvalue() == ""
    assert second.getvalue().count('"once"') == 1


def test_auto_format_is_json_off_a_terminal_and_console_on_one() -> None:
    piped, tty = io.StringIO(), _TtyStream()
    configure_logging(format="auto", stream=piped)
    structlog.get_logger("syncd").info("piped line", script="edge")
    configure_logging(format="auto", stream=tty)
    structlog.get_logger("syncd").info("tty line", script="edge")

    assert piped.getvalue().startswith("{")
    assert not tty.getvalue().startswith("{")
    assert "tty line" in tty.getvalue()


def test_console_format_renders_a_readable_line_with_masked_keys() -> None:
    stream = io.StringIO()
    canary = _canary()
    configure_logging(format="console", stream=stream)
    structlog.get_logger("syncd.app").info("console line", mapping="api-keys", cf_api_token=canary)

    text = stream.getvalue()
    assert "console line" in text
    assert "mapping=api-keys" in text
    assert f"cf_api_token={MASK}" in text
    assert canary not in text


# --- redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        *sorted(SENSITIVE_KEYS),
        *("Token", "X-Vault-Token", "Authorization", "cf_api_token", "vault-client-token", "APPROLE_SECRET_ID"),
        *("db_password", "cloudflare_global_key", "oidc_jwt", "approle_secret"),
    ],
)
def test_sensitive_key_is_masked_at_top_level(key: str) -> None:
    assert _redact(event="e", **{key: "s3cr3t"})[key] == MASK


@pytest.mark.parametrize(
    "key", ["binding", "script", "mapping", "version", "event", "exc_value", "keys", "secret_name", "token_ttl"]
)
def test_harmless_key_is_kept(key: str) -> None:
    assert _redact(**{key: "shown"})[key] == "shown"


def test_sensitive_keys_are_masked_inside_nested_dicts_and_lists() -> None:
    event = _redact(
        event="bulk",
        request={
            "secrets": [
                {"name": "API_KEY", "type": "secret_text", "text": "v1"},
                {"name": "SIGNING", "type": "secret_key", "key_base64": "v2", "usages": ["sign"]},
                {"name": "JWK", "type": "secret_key", "key_jwk": {"k": "v3"}},
            ],
            "headers": {"X-Vault-Token": "v4", "Accept": "application/json"},
            "auth": ({"client_token": "v5", "lease_duration": 60},),
        },
    )

    rendered = repr(event)
    for value in ("v1", "v2", "v3", "v4", "v5"):
        assert f"'{value}'" not in rendered
    secrets_ = event["request"]["secrets"]
    assert [s["name"] for s in secrets_] == ["API_KEY", "SIGNING", "JWK"]
    assert secrets_[1]["usages"] == ["sign"]
    assert event["request"]["headers"]["Accept"] == "application/json"
    assert event["request"]["auth"][0]["lease_duration"] == 60


def test_redaction_copies_nested_containers_instead_of_changing_the_callers() -> None:
    body = {"name": "API_KEY", "text": "v1"}
    _redact(event="e", body=body)
    assert body == {"name": "API_KEY", "text": "v1"}


def test_masked_types_render_masked_under_any_key(json_logs: LogCapture) -> None:
    canary = _canary()
    structlog.get_logger("syncd").info(
        "holders",
        harmless=SecretValue(canary),
        data=SecretData({"k": canary}),
        items=[SecretBody({"name": "N", "type": "secret_text", "text": canary})],
    )

    assert canary not in json_logs.text
    [line] = json_logs.events("holders")
    assert (line["harmless"], line["data"], line["items"]) == (MASK, MASK, [MASK])


def test_credentials_in_free_text_are_scrubbed_from_library_messages(json_logs: LogCapture) -> None:
    bearer, vault_token = _canary(), "hvs." + secrets.token_urlsafe(24)
    logging.getLogger("urllib3").warning("sent Authorization: Bearer %s", bearer)
    logging.getLogger("hvac").warning("headers {'X-Vault-Token': '%s'}", vault_token)
    logging.getLogger("hvac").warning("token was %s", vault_token)

    assert bearer not in json_logs.text
    assert vault_token not in json_logs.text
    assert len(json_logs.lines()) == 3


def test_stdlib_extra_fields_are_redacted(json_logs: LogCapture) -> None:
    canary = _canary()
    logging.getLogger("requests").warning("with extra", extra={"password": canary, "status": 403})

    [line] = json_logs.events("with extra")
    assert line["password"] == MASK
    assert line["status"] == 403
    assert canary not in json_logs.text


# --- exceptions --------------------------------------------------------------------------------


def _fail_holding(value: str) -> None:
    held_value = value  # a local variable a locals-rendering traceback would print
    raise RuntimeError(f"refused (length {len(held_value)})")


def test_structlog_exception_traceback_has_frames_but_no_locals(json_logs: LogCapture) -> None:
    canary = _canary()
    try:
        _fail_holding(canary)
    except RuntimeError:
        structlog.get_logger("syncd.engine").exception("push failed", mapping="api-keys")

    assert canary not in json_logs.text
    [line] = json_logs.events("push failed")
    [stack] = line["exception"]
    assert stack["exc_type"] == "RuntimeError"
    assert [frame["name"] for frame in stack["frames"]][-1] == "_fail_holding"
    assert all("locals" not in frame for frame in stack["frames"])


def test_stdlib_exception_traceback_has_no_locals(json_logs: LogCapture) -> None:
    canary = _canary()
    try:
        _fail_holding(canary)
    except RuntimeError:
        logging.getLogger("apscheduler.scheduler").exception("job crashed")

    assert canary not in json_logs.text
    [line] = json_logs.events("job crashed")
    assert line["exception"][0]["exc_type"] == "RuntimeError"


def test_console_exception_traceback_is_plain_and_has_no_locals() -> None:
    stream = io.StringIO()
    canary = _canary()
    configure_logging(format="console", stream=stream)
    try:
        _fail_holding(canary)
    except RuntimeError:
        structlog.get_logger("syncd").exception("console failure")

    text = stream.getvalue()
    assert "Traceback (most recent call last)" in text
    assert "_fail_holding" in text
    assert canary not in text
    assert not re.search(r"held_value\s*=\s*'", text)
