#!/usr/bin/env bash
# Regenerates the hashed dependency locks from pyproject.toml with pip-tools (pinned below):
#
#   constraints.txt            every dependency of syncd[dev] (runtime, test and dev tools) and the
#                              build requirements (setuptools, wheel), each pinned with its sha256
#                              hashes. scripts/setup-dev.sh (so CI) installs it with --require-hashes.
#   requirements-runtime.txt   the runtime closure and the build requirements only, same versions and
#                              hashes (tests/deploy/test_locks.py checks it is a subset). The image
#                              installs it with --require-hashes.
#
# Existing pins are kept (pip-compile prefers what the output file already pins); pass
# --upgrade or --upgrade-package NAME to move them. Needs PyPI. Run from anywhere:
#   bash scripts/lock-dependencies.sh [--upgrade-package NAME]...
set -euo pipefail
cd "$(dirname "$0")/.."

PIP_TOOLS=pip-tools==7.6.2
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$PIP_TOOLS"

# Only PyPI: no machine-local find-links or extra indexes may leak into the locks.
export PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL=
compile() {
    "$tools/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --all-build-deps --strip-extras \
        --no-emit-index-url --no-emit-find-links --resolver=backtracking "$@" pyproject.toml
    # syncd[dev] names syncd[test]: pip-compile lists the project itself as a file:// URL, which
    # cannot be hashed or installed elsewhere. The project is installed with --no-deps instead.
    local out="${*: -1}"
    out="${out#--output-file=}"
    python3 - "$out" <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
text = re.sub(r"# WARNING: pip install will require the following package to be hashed\.\n# Consider[^\n]*\n"
              r"syncd @ file://[^\n]*\n(    #[^\n]*\n)*", "", text)
open(path, "w", encoding="utf-8").write(text)
EOF
}
compile --extra dev "$@" --output-file=constraints.txt
# The runtime lock starts from constraints.txt's pins so both agree on every shared version.
cp constraints.txt requirements-runtime.txt
compile "$@" --output-file=requirements-runtime.txt
grep -q 'file://' constraints.txt requirements-runtime.txt && { echo "lock: a file:// entry is left" >&2; exit 1; }
echo "lock: wrote constraints.txt ($(grep -c '^[A-Za-z].*==' constraints.txt) pins) and" \
    "requirements-runtime.txt ($(grep -c '^[A-Za-z].*==' requirements-runtime.txt) pins)"
