"""The JavaScript the devstack adds around the Workers it runs: the router and each version's entry.

**Router** (the service on the Workers address). A request reaches script ``S`` by its Host header
(``S.localhost:PORT``, ``S.anything``: the first label, when it names a deployed script) or by its
path (``/S/rest`` -> the Worker sees ``/rest``; ``/ACCOUNT_ID/S/rest`` for a script of another
account). A bare script name is looked up in the default account first, then in any account that
has it. Unknown names answer 404. ``/__devstack/...`` goes to the runtime's own status routes.

A gradual deployment splits by percentage, deterministically, by smooth weighted round robin (as
nginx balances upstreams): per script, each version's credit grows by its percentage on every
request, the version with the most credit (the first on a tie) serves and gives back 100. From
the runtime's (re)load on, every 100 consecutive requests reach each version exactly its (whole)
percentage of times, spread evenly: under 50/50 the versions alternate, starting with the first
one the deployment lists. Every answer carries ``x-devstack-version-id`` (and
``x-devstack-script``) naming the version that served it.

**Entry** (one per version, its main module). It imports the uploaded main module, hands its
``fetch`` handler the bindings as the version has them, plus what workerd has no binding type for:
a ``secrets_store_secret`` binding is an object whose ``async get()`` reads the Secrets Store's
current value through the runtime (so an edit shows without a reload), and a ``version_metadata``
binding is ``{id, tag, timestamp}``. A non-enumerable ``env.__devstack`` holds the script, the
version and each binding's name and type (no values) for the default Worker's report.
"""

from __future__ import annotations

import json
from typing import Any

STATUS_BINDING = "__DEVSTACK_STATUS"
BRIDGE_BINDING = "__DEVSTACK_SECRETS_STORE"

ROUTER = r"""
const TABLE = %TABLE%;
const credits = new Map();

function pick(key) {
  const split = TABLE.scripts[key];
  const credit = credits.get(key) || split.map(() => 0);
  credits.set(key, credit);
  let best = 0;
  split.forEach(([, percentage], i) => {
    credit[i] += percentage;
    if (credit[i] > credit[best]) best = i;
  });
  credit[best] -= 100;
  return [split[best][0], split[best][2]];
}

function resolve(name, account) {
  if (account) return TABLE.scripts[account + "/" + name] ? account + "/" + name : null;
  const own = TABLE.default_account + "/" + name;
  if (TABLE.scripts[own]) return own;
  return TABLE.by_name[name] || null;
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/__devstack/")) return env.%STATUS%.fetch(request);
    const host = (request.headers.get("host") || url.host).split(":")[0];
    let key = host.includes(".") ? resolve(host.split(".")[0], null) : null;
    let rest = url.pathname;
    if (!key) {
      const parts = url.pathname.split("/");
      if (/^[0-9a-f]{32}$/.test(parts[1] || "") && parts.length > 2) {
        key = resolve(parts[2], parts[1]);
        rest = "/" + parts.slice(3).join("/");
      } else {
        key = resolve(parts[1] || "", null);
        rest = "/" + parts.slice(2).join("/");
      }
    }
    if (!key) {
      const scripts = Object.keys(TABLE.scripts);
      return Response.json({ error: "no deployed Worker answers here", scripts }, { status: 404 });
    }
    const [binding, versionId] = pick(key);
    const target = new URL(url);
    target.pathname = rest;
    const response = await env[binding].fetch(new Request(target, request));
    const answer = new Response(response.body, response);
    answer.headers.set("x-devstack-version-id", versionId);
    answer.headers.set("x-devstack-script", key.split("/")[1]);
    return answer;
  },
};
"""

ENTRY = r"""
import * as uploaded from "%MAIN%";
const META = %META%;

function secretsStoreSecret(bridge, binding) {
  const parts = [META.account, binding.store_id, binding.secret_name];
  const path = "/secrets-store/" + parts.map(encodeURIComponent).join("/");
  return {
    async get() {
      const response = await bridge.fetch("http://secrets-store" + path);
      if (response.status === 404) {
        throw new Error("Secret " + binding.secret_name + " not found in store " + binding.store_id);
      }
      if (!response.ok) throw new Error("the Secrets Store answered " + response.status);
      return (await response.json()).value;
    },
  };
}

function wrap(env) {
  const { %BRIDGE%: bridge, ...bindings } = env;
  for (const binding of META.extra) {
    if (binding.type === "secrets_store_secret") bindings[binding.name] = secretsStoreSecret(bridge, binding);
    if (binding.type === "version_metadata") {
      bindings[binding.name] = { id: META.version.id, tag: META.version.tag, timestamp: META.version.created_on };
    }
  }
  Object.defineProperty(bindings, "__devstack", {
    value: { script: META.script, account: META.account, version: META.version, bindings: META.bindings },
    enumerable: false,
  });
  return bindings;
}

const worker = uploaded.default;
export default {
  async fetch(request, env, ctx) {
    if (!worker || typeof worker.fetch !== "function") {
      return new Response("the Worker's main module has no default export with a fetch handler", { status: 500 });
    }
    return worker.fetch(request, wrap(env), ctx);
  },
};
"""

UNSUPPORTED = r"""
export default {
  async fetch() {
    return new Response(%REASON%, { status: 501 });
  },
};
"""


def router_source(table: dict[str, Any]) -> str:
    return ROUTER.replace("%TABLE%", json.dumps(table, sort_keys=True)).replace("%STATUS%", STATUS_BINDING)


def entry_source(main_module: str, meta: dict[str, Any]) -> str:
    return (
        ENTRY.replace("%MAIN%", "./" + main_module)
        .replace("%META%", json.dumps(meta, sort_keys=True))
        .replace("%BRIDGE%", BRIDGE_BINDING)
    )


def unsupported_source(reason: str) -> str:
    return UNSUPPORTED.replace("%REASON%", json.dumps(reason))
