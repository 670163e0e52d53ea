#!/usr/bin/env bash
# Renders the kustomize base and every overlay and validates each object against the Kubernetes
# OpenAPI schemas (kubernetes-validate --strict: unknown fields are errors). Prometheus Operator
# kinds (ServiceMonitor, PrometheusRule) have no schema there: their "no schema" warning, and only
# theirs, is tolerated. Anything else (an error, an unknown kind or apiVersion) fails the script.
# Also checks that the PrometheusRule (and the Helm chart's copy) matches deploy/alerts/syncd-rules.yaml and the Grafana
# dashboard ConfigMap (and the chart's copy) matches deploy/grafana/syncd-dashboard.json.
#
# CI runs it with .venv activated: `bash deploy/validate.sh`. Output: one line per rendering.
# Env: KUBERNETES_VERSION (default 1.32.0), KUBECTL (default kubectl), PYTHON (default python).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.32.0}"
KUBECTL="${KUBECTL:-kubectl}"
PYTHON="${PYTHON:-python}"
# Kinds without an upstream schema that may only warn. Everything else must validate.
TOLERATED_KINDS='ServiceMonitor|PrometheusRule'

command -v "$KUBECTL" >/dev/null || { echo "validate: $KUBECTL not found (needs kubectl with kustomize v5)" >&2; exit 1; }
if ! "$PYTHON" -c 'import kubernetes_validate' 2>/dev/null; then
    "$PYTHON" -m pip install -q --disable-pip-version-check 'kubernetes-validate>=1.31,<2'
fi

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

targets=(deploy/base)
for overlay in deploy/overlays/*/; do targets+=("${overlay%/}"); done

rendered=()
for target in "${targets[@]}"; do
    out="$workdir/$(echo "$target" | tr '/' '_').yaml"
    if ! "$KUBECTL" kustomize "$target" >"$out" 2>"$out.err"; then
        echo "FAIL $target: kustomize build failed" >&2
        cat "$out.err" >&2
        exit 1
    fi
    rendered+=("$out")
done

# One validator run for all renderings (schemas load once); its lines name the file.
status=0
report="$("$PYTHON" -m kubernetes_validate --strict --quiet -k "$KUBERNETES_VERSION" "${rendered[@]}" 2>&1)" || status=$?

# Lines naming no rendered file (FATAL: unsupported version, a crash) fail everything at once.
unattributed="$(grep -v -F "$(printf '%s\n' "${rendered[@]}")" <<<"$report" | grep -v '^$' || true)"
if [ -n "$unattributed" ] || { [ "$status" -ne 0 ] && [ -z "$report" ]; }; then
    echo "FAIL kubernetes-validate (exit $status) for Kubernetes $KUBERNETES_VERSION:" >&2
    sed -e 's/^/    /' <<<"${unattributed:-no output}" | sort -u >&2
    exit 1
fi

failed=0
for i in "${!targets[@]}"; do
    target="${targets[$i]}"
    out="${rendered[$i]}"
    mine="$(grep -F -- "$out" <<<"$report" || true)"
    tolerated="$(grep -E "^WARN $out Couldn't find schema for kind ($TOLERATED_KINDS) with api version monitoring\.coreos\.com/v1 " <<<"$mine" || true)"
    problems="$(grep -v -x -F -f <(printf '%s\n' "$tolerated") <<<"$mine" | grep -v '^$' || true)"
    count="$(grep -c '^kind:' "$out" || true)"
    skipped="$(grep -c . <<<"$tolerated" || true)"
    if [ -n "$problems" ]; then
        echo "FAIL $target: $count objects" >&2
        sed -e "s#$out#$target#g" -e 's/^/    /' <<<"$problems" >&2
        failed=1
    else
        echo "ok   $target: $count objects valid for Kubernetes $KUBERNETES_VERSION (strict)$( [ "$skipped" -gt 0 ] && echo ", $skipped Prometheus Operator objects not schema-checked")"
    fi
done
# A non-zero exit that no line above explains is a failure too.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "FAIL kubernetes-validate exited $status without naming a problem:" >&2
    sed -e 's/^/    /' <<<"$report" >&2
    failed=1
fi

if [ ! -f deploy/alerts/syncd-rules.yaml ]; then
    echo "ok   deploy/components/monitoring/prometheusrule.yaml (no deploy/alerts/syncd-rules.yaml to compare with)"
elif "$PYTHON" deploy/components/monitoring/sync-rules.py --check >/dev/null; then
    echo "ok   deploy/components/monitoring/prometheusrule.yaml and deploy/helm/syncd/files/syncd-rules.yaml match deploy/alerts/syncd-rules.yaml"
else
    echo "FAIL deploy/components/monitoring/prometheusrule.yaml differs from deploy/alerts/syncd-rules.yaml:" \
        "run python deploy/components/monitoring/sync-rules.py" >&2
    failed=1
fi
if "$PYTHON" deploy/components/grafana/sync-dashboard.py --check >/dev/null; then
    echo "ok   deploy/components/grafana/dashboard-configmap.yaml and deploy/helm/syncd/files/syncd-dashboard.json match deploy/grafana/syncd-dashboard.json"
else
    echo "FAIL deploy/components/grafana/dashboard-configmap.yaml differs from deploy/grafana/syncd-dashboard.json:" \
        "run python deploy/components/grafana/sync-dashboard.py" >&2
    failed=1
fi
exit "$failed"
