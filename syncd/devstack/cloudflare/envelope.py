"""The Cloudflare API v4 envelope, the error codes the emulator uses, and ``ApiError``.

Every answer on the real paths is ``{"success", "errors", "messages", "result"}`` with a real
HTTP status. Handlers raise :class:`ApiError`; the server turns it into a failure envelope.

Error codes and where they come from (``search`` over public sources, see the package docstring):

- 6003 "Invalid request headers" + error_chain 6111 / 6103: seen verbatim in issues against
  acme.sh and ultimate-multisite (status 400).
- 6007 "Malformed JSON in request body": seen verbatim (undefinedplayer/cloudflare-ddns #10).
- 7000 "No route for that URI" / 7003 "Could not route to ..., perhaps your object identifier
  is invalid?": seen verbatim, usually together, with status 400.
- 7001 "Method PUT not available for that URI.": seen verbatim; the status (405) is UNVERIFIED.
- 9103 "Unknown X-Auth-Key or X-Auth-Email", 9106 "Missing X-Auth-Key, X-Auth-Email or
  Authorization headers" (status 400 in a probe of the live API), 9109 "Invalid access token".
- 10000 "Authentication error" (403), 1000 "Invalid API Token" (verify endpoints, 401).
- 10007, 10016, 10053, 10054, 10056, 10214, 10215: Workers API codes, wrangler sources/issues.
- 10021 "binding X of type Y is invalid": seen for invalid bindings; used here for every
  secret-body validation failure (the exact code per field is UNVERIFIED).
- 10222 (``versions/latest`` on a script without versions): wrangler's ``NO_VERSIONS_ERR_CODE``;
  the message is the one wrangler shows for it (the API's own text is UNVERIFIED).
- 429 for concurrent edits of one script: code and message UNVERIFIED (``EmulatorConfig``).
- 971 "Please wait and consider throttling your request speed" (429).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from syncd.devstack.httpkit import Response

RATE_LIMITED = 971
INVALID_API_TOKEN = 1000
INVALID_REQUEST_HEADERS = 6003
INVALID_AUTHORIZATION_FORMAT = 6111
INVALID_X_AUTH_KEY_FORMAT = 6103
MALFORMED_JSON = 6007
NO_ROUTE = 7000
METHOD_NOT_AVAILABLE = 7001
COULD_NOT_ROUTE = 7003
UNKNOWN_GLOBAL_KEY = 9103
MISSING_CREDENTIALS = 9106
INVALID_ACCESS_TOKEN = 9109
AUTHENTICATION_ERROR = 10000
WORKER_NOT_FOUND = 10007
INVALID_SCRIPT_NAME = 10016
INVALID_BINDING = 10021
BINDING_NAME_IN_USE = 10053
TEXT_BINDING_TOO_LARGE = 10054
BINDING_NOT_FOUND = 10056
NAMESPACE_NOT_FOUND = 100119  # UNVERIFIED
SCRIPT_EDIT_NOT_DEPLOYED = 10214
SECRET_EDIT_NOT_DEPLOYED = 10215
ROLLBACK_WITH_CHANGED_SECRETS = 10220  # wrangler versions/rollback: CANNOT_ROLLBACK_WITH_MODIFIED_SECERT_CODE
NO_VERSIONS = 10222  # wrangler versions/secrets/index.ts: NO_VERSIONS_ERR_CODE
VERSION_NOT_FOUND = 10007  # UNVERIFIED: the code for an unknown version id
INVALID_DEPLOYMENT = 10021  # UNVERIFIED: the code for a bad deployment body
CONCURRENT_EDIT = 10013  # UNVERIFIED: the code of the concurrent-edit 429 (config.concurrent_edit_code)

TOKEN_VALID = 10000
TOKEN_VALID_MESSAGE = "This API Token is valid and active"
SECRET_EDIT_NOT_DEPLOYED_MESSAGE = (
    "Secret edit failed. You attempted to modify a secret, but the latest version of your Worker isn't "
    "currently deployed. Please ensure that the latest version of your Worker is fully deployed "
    "(wrangler versions deploy) before modifying secrets. Alternatively, you can use the Cloudflare "
    "dashboard to modify secrets and deploy the version."
)
NO_VERSIONS_MESSAGE = (
    "There are currently no uploaded versions of this Worker. Please upload a version before modifying a secret."
)
SCRIPT_EDIT_NOT_DEPLOYED_MESSAGE = (
    "Script edit failed. You attempted to deploy the latest version with modified settings, but the "
    "latest version isn't currently deployed. Either upload a new version to edit the version settings, "
    "or use the script-level settings API (/workers/scripts/{script_name}/script-settings) to modify the "
    '"logpush" and "tail_consumers" settings.'
)


@dataclass
class ApiError(Exception):
    """A failure answer: HTTP status plus one or more ``{code, message}`` errors."""

    status: int
    code: int
    message: str
    error_chain: list[dict[str, Any]] = field(default_factory=list)
    extra_errors: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} [{self.code}] {self.message}"

    def errors(self) -> list[dict[str, Any]]:
        first: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.error_chain:
            first["error_chain"] = list(self.error_chain)
        return [first, *self.extra_errors]


def success(result: Any, messages: list[dict[str, Any]] | None = None, status: int = 200) -> Response:
    return envelope_response(status, {"success": True, "errors": [], "messages": messages or [], "result": result})


def failure(error: ApiError) -> Response:
    body = {"success": False, "errors": error.errors(), "messages": [], "result": None}
    return envelope_response(error.status, body, dict(error.headers))


def envelope_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return Response(status, json.dumps(body).encode(), all_headers)


def parse_json_body(body: bytes) -> Any:
    """The request body as JSON; malformed or empty JSON is the real API's 6007 (400)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, MALFORMED_JSON, "Malformed JSON in request body") from exc
