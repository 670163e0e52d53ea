# Vault policy "syncd": read-only access to exactly the secrets syncd's mappings name, nothing else.
# Install: vault policy write syncd deploy/vault/syncd-policy.hcl
# Explained in docs/vault-policy.md. Keep it in step with the [[mapping]] entries of the deployed
# config (tests/deploy/test_manifests.py checks it against deploy/overlays/production/config.toml).
#
# Not listed on purpose:
# - sys/internal/ui/mounts/<mount> (how syncd tells KV v1 from v2): Vault answers it for any token
#   holding a capability on some path in that mount; Vault's docs say not to grant it directly.
# - auth/token/lookup-self and renew-self: granted by Vault's built-in "default" policy, which the
#   Kubernetes auth role attaches unless token_no_default_policy is set.
# - list, and any create/update/delete: syncd never lists or writes Vault.

# --- KV v2 at secret/: each secret needs its metadata (current version, deletion state: one read
# per cycle) and its data (the exact version, read only when it changed).

# mapping payments-api
path "secret/metadata/payments/api" {
  capabilities = ["read"]
}
path "secret/data/payments/api" {
  capabilities = ["read"]
}

# mapping feature-config
path "secret/metadata/features" {
  capabilities = ["read"]
}
path "secret/data/features" {
  capabilities = ["read"]
}

# --- KV v1 at kv/: no metadata or versions, the secret itself.

# mapping search-all-keys
path "kv/search" {
  capabilities = ["read"]
}

# --- Database static roles (a mapping source with kind = "database"): read on the role's
# credentials only, one path per role. syncd reads it on every check of the role (there is no
# metadata path), and once just after each rotation Vault announces. No mapping of this config has
# one; for a source { kind = "database", mount = "database", role = "orders" } it would be:
#
# path "database/static-creds/orders" {
#   capabilities = ["read"]
# }
