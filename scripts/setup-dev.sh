#!/usr/bin/env bash
# Creates .venv and installs syncd with its development and test dependencies (idempotent).
#
# A re-run with nothing changed returns at once: the install is skipped while a stamp of
# pyproject.toml + constraints.txt + the Python version matches and the venv still imports this
# checkout's syncd and its tools. The install's output (pip's notices, the setuptools banner) is
# kept in .venv/setup.log and shown only when the install fails.
#
# Every dependency (and the build requirements setuptools and wheel) comes from constraints.txt,
# pinned with sha256 hashes and installed with --require-hashes; syncd itself is then installed
# editable with --no-deps --no-build-isolation, since pip refuses unhashed (editable) requirements in
# hash-checking mode. Regenerate the lock with scripts/lock-dependencies.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd -P)"
stamp_file=.venv/.setup-stamp
stamp="$( (cat pyproject.toml constraints.txt scripts/pip.lock; python3 --version) | sha256sum | cut -d' ' -f1)"

venv_intact() {
    [ -x .venv/bin/python ] && .venv/bin/python - "$root" <<'EOF' 2>/dev/null
import sys
import syncd, pytest, mypy, ruff  # noqa: F401 - the tools setup promises
assert syncd.__file__.startswith(sys.argv[1] + "/"), "the venv's syncd is another checkout"
EOF
}

install_venv() {

    echo "setup-dev: installing syncd and its development dependencies into .venv ..."
    [ -x .venv/bin/python ] || python3 -m venv .venv
    rm -f "$stamp_file"
    log=.venv/setup.log
    if ! {
        .venv/bin/python -m pip install --quiet --require-hashes -r scripts/pip.lock &&
            .venv/bin/python -m pip install --quiet --require-hashes -r constraints.txt &&
            .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e '.[dev]'
    } >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup-dev: install failed (log above, also in $log)" >&2
        exit 1
    fi
    echo "$stamp" >"$stamp_file"
    echo "setup-dev: done"
}

if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] && venv_intact; then
    echo "setup-dev: .venv is up to date (pyproject.toml and constraints.txt unchanged)"
else
    install_venv
fi
bash scripts/setup-prometheus.sh   # promtool and prometheus for tests/monitoring (skips them if it cannot)
bash scripts/setup-workers.sh      # workerd, wrangler and Node 22 in .tools/ for the Workers runtime (skips them if it cannot)
bash scripts/setup-helm.sh         # helm and kubectl in .tools/bin for tests/deploy/test_helm_*.py
