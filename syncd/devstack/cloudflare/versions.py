"""Worker versions and deployments: the records and how the real API shows them.

Every change to a script makes a new immutable :class:`Version` (id a UUID, ``number`` 1, 2, ...)
holding the full binding set (plain-text vars and secrets, values included: only the admin API
ever shows a value). A :class:`Deployment` routes traffic to one or two versions by percentage
(strategy ``"percentage"``); the newest deployment is the one serving.

Wire shapes, from the official SDK 5.9 (``types/workers/scripts/version_get_response.py``,
``version_list_response.py``, ``deployment.py``, ``types/workers/beta/workers/version.py``) and
wrangler (``packages/deploy-helpers/src/deploy/helpers/versions-types.ts``: ``ApiVersion``,
``ApiDeployment``; ``packages/wrangler/src/versions/secrets/index.ts``: ``VersionDetails``):

- classic version: ``{id, number, metadata: {author_email, author_id, created_on, modified_on,
  source, hasPreview}, annotations: {"workers/message"?, "workers/tag"?, "workers/triggered_by"},
  resources: {bindings, script: {etag, handlers, last_deployed_from}, script_runtime}}``;
- list item: the same without ``resources`` (the SDK's ``VersionListResponse``; wrangler reads
  ``annotations`` from list items, so they are included);
- beta version (``/workers/workers/{id}/versions``): flat ``{id, number, created_on, urls,
  annotations, author_email, author_id, source, bindings, compatibility_date, main_module}``;
- deployment: ``{id, created_on, source, strategy, author_email, annotations, versions:
  [{version_id, percentage}]}``.

Bindings never carry a value: ``secret_text`` is ``{name, type}``, ``secret_key`` adds its
``format``/``algorithm``/``usages``; ``plain_text`` keeps ``text`` (vars are not secret).

UNVERIFIED: the ``workers/triggered_by`` value per write path (wrangler's fixtures show
"upload" and "rollback"; "secret", "settings" and "deployment" are this emulator's choice) and
the ``source`` of API writes ("wrangler" when the User-Agent names wrangler, else "api").
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from syncd.devstack.cloudflare.code import DEFAULT_COMPATIBILITY_DATE, WorkerCode
from syncd.devstack.cloudflare.validation import public_view

TRIGGER_UPLOAD = "upload"
TRIGGER_SECRET = "secret"  # UNVERIFIED
TRIGGER_SETTINGS = "settings"  # UNVERIFIED
TRIGGER_DEPLOYMENT = "deployment"  # UNVERIFIED
ANNOTATION_KEYS = ("workers/message", "workers/tag")
MAX_MESSAGE_BYTES = 1000  # SDK: "Truncated to 1000 bytes if longer"
MAX_TAG_BYTES = 100  # SDK: "Maximum 100 bytes"


@dataclass(frozen=True)
class Author:
    """Who made a version or deployment, as ``metadata`` reports it."""

    email: str
    user_id: str
    source: str


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Version:
    id: str
    number: int
    created_on: str
    author: Author
    annotations: dict[str, str]
    plain_text: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Bindings that hold no value the API keeps secret (``secrets_store_secret``, ``version_metadata``,
    # ...), as uploaded; carried into later versions like the code.
    other_bindings: dict[str, dict[str, Any]] = field(default_factory=dict)
    code: WorkerCode | None = None  # None: made without uploaded code (the devstack's default Worker)

    def bindings(self) -> list[dict[str, Any]]:
        """The version's bindings as the API shows them: never a secret value."""
        shown: list[dict[str, Any]] = [
            {"name": name, "type": "plain_text", "text": text} for name, text in self.plain_text.items()
        ]
        shown.extend(public_view(secret) for secret in self.secrets.values())
        shown.extend(dict(binding) for binding in self.other_bindings.values())
        return shown

    @property
    def compatibility_date(self) -> str:
        return self.code.compatibility_date if self.code is not None else DEFAULT_COMPATIBILITY_DATE

    @property
    def main_module(self) -> str:
        return self.code.main_module if self.code is not None else "index.js"

    def metadata(self) -> dict[str, Any]:
        return {
            "author_email": self.author.email,
            "author_id": self.author.user_id,
            "created_on": self.created_on,
            "modified_on": self.created_on,
            "source": self.author.source,
            "hasPreview": False,
        }

    def list_item(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "metadata": self.metadata(),
            "annotations": dict(self.annotations),
        }

    def detail(self, script_name: str) -> dict[str, Any]:
        etag = hashlib.sha256(f"{script_name}:{self.id}".encode()).hexdigest()
        return {
            **self.list_item(),
            "resources": {
                "bindings": self.bindings(),
                "script": {"etag": etag, "handlers": ["fetch"], "last_deployed_from": self.author.source},
                "script_runtime": {
                    "compatibility_date": self.compatibility_date,
                    "compatibility_flags": list(self.code.compatibility_flags) if self.code else [],
                    "usage_model": "standard",
                    "limits": {},
                },
            },
        }

    def beta_view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "created_on": self.created_on,
            "urls": [],
            "annotations": dict(self.annotations),
            "author_email": self.author.email,
            "author_id": self.author.user_id,
            "source": self.author.source,
            "bindings": self.bindings(),
            "compatibility_date": self.compatibility_date,
            "main_module": self.main_module,
            "usage_model": "standard",
        }

    def admin_view(self) -> dict[str, Any]:
        """For the admin API only: the values too."""
        return {
            **self.list_item(),
            "plain_text": dict(self.plain_text),
            "secrets": {name: dict(secret) for name, secret in self.secrets.items()},
        }


@dataclass
class Deployment:
    id: str
    created_on: str
    author: Author
    split: list[tuple[str, float]]  # (version_id, percentage), summing to 100
    annotations: dict[str, str]

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_on": self.created_on,
            "source": self.author.source,
            "strategy": "percentage",
            "author_email": self.author.email,
            "annotations": dict(self.annotations),
            "versions": [{"version_id": version_id, "percentage": pct} for version_id, pct in self.split],
        }


def clean_annotations(raw: Any) -> dict[str, str]:
    """The caller-settable annotations (``workers/message``, ``workers/tag``), trimmed as documented.

    Unknown keys and non-string values are dropped (``workers/triggered_by`` is set by the API).
    """
    if not isinstance(raw, dict):
        return {}
    cleaned: dict[str, str] = {}
    for key in ANNOTATION_KEYS:
        value = raw.get(key)
        if isinstance(value, str):
            limit = MAX_MESSAGE_BYTES if key == "workers/message" else MAX_TAG_BYTES
            cleaned[key] = value.encode()[:limit].decode(errors="ignore")
    return cleaned
