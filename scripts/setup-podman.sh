#!/usr/bin/env bash
# Sets up a container engine that can build and run the syncd image on this kind of machine
# (Debian bookworm, root, no image registry reachable), for scripts/build-image.sh and
# tests/deploy/test_image.py. Idempotent: a re-run with everything in place only prints a line.
#
# 1. podman, runc and mmdebstrap from Debian's packages. runc, not podman's default crun: crun
#    refuses the cgroup layout of these machines ("cgroups in hybrid mode not supported").
# 2. A containers.conf without default ulimits (setting RLIMIT_NOFILE/NPROC is not permitted here),
#    written to .tools/podman/containers.conf; build-image.sh points CONTAINERS_CONF at it.
# 3. The Dockerfile's base image. Where it can be pulled, real builds use it. Here no registry can be
#    reached, so a STAND-IN is built from Debian's own packages (bookworm's Python is 3.11, as the
#    official image's) with mmdebstrap and imported under the base's name, so the real Dockerfile
#    builds unchanged. The stand-in exists only to check the build and the image's behaviour on
#    this machine; it is labelled org.syncd.stand-in=true and must never be pushed or shipped.
#
# Without apt-get or root it says what is missing and exits 0 (the image test then skips, naming
# the reason); with SYNCD_REQUIRE_IMAGE=1 any failure is fatal.
# Env: PODMAN_RUNTIME (default runc).
set -euo pipefail
cd "$(dirname "$0")/.."

required="${SYNCD_REQUIRE_IMAGE:-}"
tools=.tools/podman
conf="$tools/containers.conf"
runtime="${PODMAN_RUNTIME:-runc}"

give_up() {
    if [ "$required" = "1" ]; then
        echo "setup-podman: $1 (SYNCD_REQUIRE_IMAGE=1)" >&2
        exit 1
    fi
    echo "setup-podman: $1; the image build and its test will skip." >&2
    exit 0
}

have_tools() { command -v podman >/dev/null 2>&1 && command -v "$runtime" >/dev/null 2>&1 && command -v mmdebstrap >/dev/null 2>&1; }

if ! have_tools; then
    command -v apt-get >/dev/null 2>&1 || give_up "podman/$runtime/mmdebstrap not found and no apt-get here"
    [ "$(id -u)" -eq 0 ] || give_up "podman/$runtime/mmdebstrap not found and not root (apt-get needs root)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || give_up "apt-get update failed"
    apt-get install -y -qq --no-install-recommends podman runc mmdebstrap ca-certificates >/dev/null \
        || give_up "apt-get install podman runc mmdebstrap failed"
    have_tools || give_up "the packages installed no podman/$runtime/mmdebstrap on PATH"
fi

mkdir -p "$tools"
printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "%s"\n' "$runtime" >"$conf.new"
mv "$conf.new" "$conf"
export CONTAINERS_CONF="$PWD/$conf"

# The base every FROM of the Dockerfile names (both stages use the same one).
mapfile -t bases < <(sed -n -E 's/^FROM[[:space:]]+([^[:space:]]+).*/\1/p' Dockerfile | grep -v -E '^(build|runtime)$' | sort -u)
[ "${#bases[@]}" -eq 1 ] || give_up "expected one base image in the Dockerfile, found: ${bases[*]:-none}"
base="${bases[0]}"
case "$base" in */*) qualified="$base" ;; *) qualified="docker.io/library/$base" ;; esac

if podman image exists "$qualified"; then
    kind="$(podman image inspect --format '{{ index .Labels "org.syncd.stand-in" }}' "$qualified" 2>/dev/null || true)"
    echo "setup-podman: $(podman --version), runtime $runtime; base $qualified present${kind:+ (stand-in)}"
    exit 0
fi

case "$base" in
    *python:3.11*bookworm*) ;;
    *) give_up "the stand-in base is Debian bookworm's Python 3.11; the Dockerfile now wants $base" ;;
esac
echo "setup-podman: no registry here: building a STAND-IN for $qualified from Debian's packages" \
    "(for checking the build on this machine only; real builds use the official image)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,python-is-python3,passwd \
    bookworm "$work/base.tar" || give_up "mmdebstrap could not build the stand-in base"
podman import --quiet \
    --change 'LABEL org.syncd.stand-in=true' \
    --change 'LABEL org.syncd.stand-in.note=Debian bookworm python3 for checking the build only; not the official image' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$work/base.tar" "$qualified" >/dev/null || give_up "podman import of the stand-in base failed"
echo "setup-podman: $(podman --version), runtime $runtime; stand-in base $qualified imported" \
    "($(podman image inspect --format '{{ .Size }}' "$qualified" | awk '{printf "%.0f MB", $1/1e6}'))"
