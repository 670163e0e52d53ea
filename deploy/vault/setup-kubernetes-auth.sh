#!/usr/bin/env bash
# One-time Vault setup for syncd on Kubernetes: the "syncd" policy and a Kubernetes auth role
# bound to the syncd service account. Run by a Vault operator (a token allowed to manage
# sys/policies and auth/), from the repository root, with the vault CLI:
#
#   export VAULT_ADDR=https://vault.example.internal:8200 VAULT_TOKEN=...   # an operator token
#   SYNCD_NAMESPACE=syncd K8S_HOST=https://203.0.113.5:6443 K8S_CA_CERT=./cluster-ca.crt \
#     TOKEN_REVIEWER_JWT_FILE=./vault-reviewer.jwt bash deploy/vault/setup-kubernetes-auth.sh
#
# How Vault checks syncd's login: syncd sends its projected service-account token (audience
# "vault", one hour, rotated by the kubelet). Vault calls the cluster's TokenReview API to check it,
# with its own reviewer identity: a service account bound to the ClusterRole
# system:auth-delegator. If Vault runs inside this cluster it uses its own pod token and
# TOKEN_REVIEWER_JWT_FILE can stay unset. From outside, create the reviewer first, e.g.:
#
#   kubectl -n vault-auth create serviceaccount vault-reviewer
#   kubectl create clusterrolebinding vault-reviewer-auth-delegator \
#     --clusterrole=system:auth-delegator --serviceaccount=vault-auth:vault-reviewer
#   kubectl -n vault-auth create token vault-reviewer --duration=8760h > vault-reviewer.jwt
#
# (syncd's own token cannot serve as the reviewer: its audience is "vault", not the API server.)
# The script is idempotent: rerunning it rewrites the same policy, config and role.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${VAULT_ADDR:?set VAULT_ADDR (and VAULT_TOKEN, an operator token)}"
: "${K8S_HOST:?set K8S_HOST to the Kubernetes API server URL as Vault reaches it}"
SYNCD_NAMESPACE="${SYNCD_NAMESPACE:-syncd}"
AUTH_MOUNT="${AUTH_MOUNT:-kubernetes}"       # [vault.auth] mount in syncd's config
ROLE="${ROLE:-syncd}"                        # [vault.auth] role in syncd's config
AUDIENCE="${AUDIENCE:-vault}"                # the StatefulSet's projected token audience

# 1. The least-privilege policy (docs/vault-policy.md).
vault policy write syncd deploy/vault/syncd-policy.hcl

# 2. The Kubernetes auth method, once per cluster.
if ! vault auth list -format=json | grep -q "\"${AUTH_MOUNT}/\""; then
    vault auth enable -path="$AUTH_MOUNT" kubernetes
fi

config_args=("kubernetes_host=$K8S_HOST")
if [ -n "${K8S_CA_CERT:-}" ]; then config_args+=("kubernetes_ca_cert=@$K8S_CA_CERT"); fi
if [ -n "${TOKEN_REVIEWER_JWT_FILE:-}" ]; then config_args+=("token_reviewer_jwt=@$TOKEN_REVIEWER_JWT_FILE"); fi
vault write "auth/$AUTH_MOUNT/config" "${config_args[@]}"

# 3. The role: only the syncd service account in its namespace, only tokens meant for Vault, and
#    only the syncd policy (plus "default" for token self-lookup and renewal). One-hour tokens:
#    syncd renews them and logs in again with a fresh service-account token when renewal ends.
vault write "auth/$AUTH_MOUNT/role/$ROLE" \
    bound_service_account_names=syncd \
    bound_service_account_namespaces="$SYNCD_NAMESPACE" \
    audience="$AUDIENCE" \
    token_policies=syncd \
    token_ttl=1h \
    token_max_ttl=4h \
    token_type=service

echo "Vault: policy syncd, auth/$AUTH_MOUNT/role/$ROLE bound to ${SYNCD_NAMESPACE}/syncd (audience $AUDIENCE)"
