#!/usr/bin/env bash
# The test command (README and CI call this): the whole suite, each test under a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
