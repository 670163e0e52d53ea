#!/usr/bin/env bash
# The README's first command: set up .venv, then run the live demo against the devstack.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-dev.sh
exec .venv/bin/syncd demo "$@"
