#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's packages for the monitoring tests
# (tests/monitoring/: promtool check/test rules, PromQL parsing, a real Prometheus scraping syncd).
#
# Idempotent and quick: nothing happens when both binaries are already on PATH.
# As root on Debian/Ubuntu: `apt-get update` once, then `apt-get install prometheus`
# (bookworm ships 2.42). The package's own service is not needed: the tests start their own
# Prometheus on a free port, so a service this script installed is disabled again.
# Elsewhere (not root, no apt-get, offline) it warns and exits 0: the Prometheus tests then skip,
# naming the missing binary. With CI=true any failure to install is fatal: CI must run them.
set -euo pipefail

ci="${CI:-}"
have_all() { command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; }

give_up() {
    if [ "$ci" = "true" ]; then
        echo "setup-prometheus: $1 (CI=true: the Prometheus tests must run)" >&2
        exit 1
    fi
    echo "setup-prometheus: $1; the Prometheus tests will skip." \
        "Install it yourself (Debian: sudo apt-get install prometheus) or set PROMTOOL/PROMETHEUS." >&2
    exit 0
}

if have_all; then
    echo "setup-prometheus: $(promtool --version 2>&1 | head -1) already installed"
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || give_up "promtool/prometheus not found and no apt-get here"
[ "$(id -u)" -eq 0 ] || give_up "promtool/prometheus not found and not root (apt-get needs root)"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || give_up "apt-get update failed"
apt-get install -y -qq --no-install-recommends prometheus >/dev/null || give_up "apt-get install prometheus failed"
have_all || give_up "the prometheus package installed no promtool/prometheus on PATH"

# The package enables and (under systemd) starts a Prometheus on :9090. Nothing here uses it.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
echo "setup-prometheus: installed $(promtool --version 2>&1 | head -1)"
