#!/usr/bin/env bash
# Builds the syncd image from the Dockerfile, writes its SBOM, and runs it the way the Kubernetes
# manifests do, against the devstack on this host:
#
#   read-only root filesystem, UID/GID 10001, every capability dropped, no new privileges, the
#   state volume at /var/lib/syncd, an in-memory /tmp, the config and the credential files mounted
#   read-only, --network=host with everything on loopback (the devstack binds 127.0.0.1);
#   then `syncd --version`, `syncd check`, `syncd once` (which pushes a seeded Vault secret to the
#   Cloudflare emulator), and `syncd run` serving /healthz, /readyz and /metrics until SIGTERM,
#   which must exit 0.
#
# Usage: bash scripts/build-image.sh [--no-run]
# Env:   IMAGE (default localhost/syncd:dev)  ENGINE (podman or docker; default: docker when its
#        daemon answers, else podman, set up by scripts/setup-podman.sh)
#        SYNCD_BUILD_CA (default $PIP_CERT, else the host's /etc/ssl/certs/ca-certificates.crt): the
#        CA bundle pip inside the build trusts (a TLS-inspecting proxy); passed as --build-arg
#        PIP_CERT and mounted read-only (podman only).
# Output: dist/syncd-sbom.cdx.json (CycloneDX JSON of the image's Python distributions), the image
#         size and each step's time. Exit 0 only when every step passed.
#
# On this project's machines no image registry is reachable: setup-podman.sh builds a STAND-IN for
# the Dockerfile's python:3.11.x-slim-bookworm base from Debian packages. That checks the build and
# the image's behaviour here; images you ship are built on the official base (README, "Install").
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

IMAGE="${IMAGE:-localhost/syncd:dev}"
run_checks=1
[ "${1:-}" = "--no-run" ] && run_checks=0
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || { echo "build-image: $python not found: run scripts/setup-dev.sh first" >&2; exit 1; }

started=$SECONDS
step_started=$SECONDS
step() { echo "build-image: $1 ($((SECONDS - step_started)) s)"; step_started=$SECONDS; }
fail() { echo "build-image: FAIL: $1" >&2; exit 1; }

# --- engine -------------------------------------------------------------------------------------
engine="${ENGINE:-}"
if [ -z "$engine" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker; else engine=podman; fi
fi
build_flags=()
if [ "$engine" = podman ]; then
    SYNCD_REQUIRE_IMAGE=1 bash scripts/setup-podman.sh
    export CONTAINERS_CONF="$root/.tools/podman/containers.conf"
    build_flags+=(--pull=never --network=host)
    ca="${SYNCD_BUILD_CA:-${PIP_CERT:-}}"
    [ -n "$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt   # the host's trust store, where it has one
    if [ -n "$ca" ] && [ -f "$ca" ]; then
        build_flags+=(--build-arg "PIP_CERT=$ca" -v "$(dirname "$ca"):$(dirname "$ca"):ro")
    fi
fi
command -v "$engine" >/dev/null 2>&1 || fail "no container engine ($engine) here"
step "engine: $("$engine" --version)"

# --- build --------------------------------------------------------------------------------------
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
version="$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
"$engine" build "${build_flags[@]}" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    -t "$IMAGE" . >"${TMPDIR:-/tmp}/syncd-image-build.log" 2>&1 \
    || { tail -40 "${TMPDIR:-/tmp}/syncd-image-build.log" >&2; fail "$engine build failed"; }
size="$("$engine" image inspect --format '{{ .Size }}' "$IMAGE")"
step "built $IMAGE: $((size / 1000000)) MB"

# --- SBOM ---------------------------------------------------------------------------------------
mkdir -p dist
"$engine" build "${build_flags[@]}" --target sbom -t "$IMAGE-sbom" . >"${TMPDIR:-/tmp}/syncd-sbom-build.log" 2>&1 \
    || { tail -40 "${TMPDIR:-/tmp}/syncd-sbom-build.log" >&2; fail "the sbom stage failed"; }
holder="$("$engine" create "$IMAGE-sbom" true)"
"$engine" cp "$holder:/sbom.cdx.json" dist/syncd-sbom.cdx.json
"$engine" rm "$holder" >/dev/null
components="$("$python" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["components"]))' dist/syncd-sbom.cdx.json)"
step "SBOM: dist/syncd-sbom.cdx.json (CycloneDX, $components components)"

[ "$run_checks" = 1 ] || { echo "build-image: done in $((SECONDS - started)) s (not run: --no-run)"; exit 0; }

# --- the devstack on the host ------------------------------------------------------------------
work="$(mktemp -d)"
devstack_pid=""
container=""
cleanup() {
    [ -n "$container" ] && "$engine" rm -f "$container" >/dev/null 2>&1
    [ -n "$devstack_pid" ] && kill "$devstack_pid" 2>/dev/null && wait "$devstack_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
"$(dirname "$python")/syncd" devstack --bind 127.0.0.1 --vault-port 0 --cloudflare-port 0 --script image-check \
    >"$work/devstack.out" 2>"$work/devstack.err" &
devstack_pid=$!
deadline=$((SECONDS + 60))
until [ -n "$(head -1 "$work/devstack.out" 2>/dev/null)" ]; do   # its one JSON line: every emulator is up
    kill -0 "$devstack_pid" 2>/dev/null || { cat "$work/devstack.err" >&2; fail "the devstack exited"; }
    [ $SECONDS -lt $deadline ] || fail "the devstack did not start within 60 s"
    sleep 0.2
done
described="$(head -1 "$work/devstack.out")"
field() { "$python" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$described" "$1"; }
vault_addr="$(field vault_addr)"
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_port="$(free_port)"

# Credentials and config as the pod gets them: files on read-only mounts, readable by 10001 only.
mkdir -p "$work/vault" "$work/cloudflare" "$work/config" "$work/state"
field vault_token >"$work/vault/token"
field cloudflare_api_token >"$work/cloudflare/token"
cat >"$work/config/config.toml" <<EOF
[vault]
address = "$vault_addr"
[vault.auth]
method = "token"
token = { file = "/etc/syncd/vault/token" }
[cloudflare]
api_base = "$(field cloudflare_api_base)"
account_id = "$(field cloudflare_account_id)"
[cloudflare.auth]
api_token = { file = "/etc/syncd/cloudflare/token" }
[sync]
state_path = "/var/lib/syncd/state.sqlite3"
interval_seconds = 30
shutdown_grace_seconds = 20
[server]
bind = "127.0.0.1"
port = $http_port
[logging]
format = "json"
level = "info"
[[mapping]]
name = "image-check"
vault = { mount = "secret", path = "image-check", kv_version = 2 }
target = { script = "image-check" }
secret_text = { keys = { api_key = "API_KEY" } }
EOF
if [ "$(id -u)" -eq 0 ]; then
    chown -R 10001:10001 "$work/vault" "$work/cloudflare" "$work/state"
    chmod 0400 "$work/vault/token" "$work/cloudflare/token"
else
    chmod 0444 "$work/vault/token" "$work/cloudflare/token"; chmod 0777 "$work/state"
fi
chmod 0444 "$work/config/config.toml"
curl -fsS -o /dev/null -X POST -H "X-Vault-Token: $(field vault_token)" \
    -d '{"data": {"api_key": "image-check-canary-value"}}' "$vault_addr/v1/secret/data/image-check" \
    || fail "seeding the devstack's Vault failed"
step "devstack on 127.0.0.1 (Vault $vault_addr)"

run_flags=(
    --network=host --read-only --user 10001:10001 --cap-drop=ALL --security-opt=no-new-privileges
    --tmpfs /tmp:rw,size=16m,mode=1777
    -v "$work/state:/var/lib/syncd:rw"
    -v "$work/config/config.toml:/etc/syncd/config.toml:ro"
    -v "$work/vault:/etc/syncd/vault:ro"
    -v "$work/cloudflare:/etc/syncd/cloudflare:ro"
)
out="$("$engine" run --rm "${run_flags[@]}" "$IMAGE" --version)" || fail "syncd --version"
step "syncd --version in the image: $out"
"$engine" run --rm "${run_flags[@]}" "$IMAGE" check --config /etc/syncd/config.toml >"$work/check.log" 2>&1 \
    || { cat "$work/check.log" >&2; fail "syncd check"; }
step "syncd check: $(grep -c . "$work/check.log") lines, exit 0"
"$engine" run --rm "${run_flags[@]}" "$IMAGE" once --config /etc/syncd/config.toml >"$work/once.log" 2>&1 \
    || { cat "$work/once.log" >&2; fail "syncd once"; }
[ -s "$work/state/state.sqlite3" ] || fail "syncd once wrote no state to the mounted volume"
grep -q "image-check-canary-value" "$work/once.log" && fail "the secret value appears in syncd once's output"
# The Worker now has the binding (names only: the Cloudflare API never returns a secret's value).
secrets="$(curl -fsS -H "Authorization: Bearer $(field cloudflare_api_token)" \
    "$(field cloudflare_api_base)/accounts/$(field cloudflare_account_id)/workers/scripts/image-check/secrets")" \
    || fail "listing the Worker's secrets on the Cloudflare emulator"
grep -q '"API_KEY"' <<<"$secrets" || fail "syncd once did not push API_KEY to the Worker: $secrets"
step "syncd once: exit 0, API_KEY pushed to the Worker, state written to the volume"

container="$("$engine" run -d "${run_flags[@]}" "$IMAGE" run --config /etc/syncd/config.toml)"
deadline=$((SECONDS + 60))
until curl -fsS -o /dev/null "http://127.0.0.1:$http_port/readyz" 2>/dev/null; do
    [ "$("$engine" inspect --format '{{ .State.Running }}' "$container" 2>/dev/null)" = true ] \
        || { "$engine" logs "$container" >&2 || true; fail "syncd run exited before it was ready"; }
    [ $SECONDS -lt $deadline ] || { "$engine" logs "$container" >&2; fail "syncd run not ready within 60 s"; }
    sleep 0.5
done
curl -fsS "http://127.0.0.1:$http_port/healthz" >/dev/null || fail "/healthz"
metrics="$(curl -fsS "http://127.0.0.1:$http_port/metrics")" || fail "/metrics"
grep -q '^syncd_build_info' <<<"$metrics" || fail "/metrics has no syncd_build_info"
step "syncd run: /readyz, /healthz and /metrics answer"
"$engine" kill --signal TERM "$container" >/dev/null
code="$("$engine" wait "$container" 2>/dev/null | tail -1)"
logs="$("$engine" logs "$container" 2>&1 || true)"
container=""
[ "$code" = 0 ] || { echo "$logs" >&2; fail "syncd run exited $code on SIGTERM (want 0)"; }
case "$logs" in *image-check-canary-value*) fail "the secret value appears in syncd run's log" ;; esac
step "syncd run: SIGTERM -> exit 0"
echo "build-image: ok: $IMAGE ($((size / 1000000)) MB) built and run in $((SECONDS - started)) s"
