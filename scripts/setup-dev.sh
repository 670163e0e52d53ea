#!/usr/bin/env bash
# Creates .venv and installs syncd with its development and test dependencies (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
bash scripts/setup-prometheus.sh   # promtool and prometheus for tests/monitoring (skips them if it cannot)
