{{/* The chart's name (nameOverride wins). */}}
{{- define "syncd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Objects' base name: the release name, unless it does not contain the chart's name. */}}
{{- define "syncd.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "syncd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "syncd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "syncd.labels" -}}
{{ include "syncd.selectorLabels" . }}
app.kubernetes.io/component: secret-sync
app.kubernetes.io/part-of: syncd
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "syncd.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "syncd.configMapName" -}}
{{- default (printf "%s-config" (include "syncd.fullname" .)) .Values.existingConfigMap -}}
{{- end -}}

{{- define "syncd.cloudflareSecret" -}}
{{- default (printf "%s-cloudflare" (include "syncd.fullname" .)) .Values.cloudflare.existingSecret -}}
{{- end -}}

{{- define "syncd.fingerprintSecret" -}}
{{- default (printf "%s-fingerprint-key" (include "syncd.fullname" .)) .Values.ha.fingerprintKey.existingSecret -}}
{{- end -}}

{{- define "syncd.leaseName" -}}
{{- printf "%s-leader" (include "syncd.fullname" .) -}}
{{- end -}}

{{- define "syncd.statePrefix" -}}
{{- printf "%s-state" (include "syncd.fullname" .) -}}
{{- end -}}

{{/*
config.toml: the values' config plus the tables the chosen features need, appended as the
kustomize components append them (components/ha: ha-snippet.yaml, components/vault-notifications:
notifications-snippet.yaml). A config that already has one of those tables fails to parse.
*/}}
{{- define "syncd.config" -}}
{{- .Values.config | trimSuffix "\n" }}
{{- if .Values.ha.enabled }}

# --- appended by the chart: ha.enabled ---
# Active/standby: only the holder of the Lease writes to Cloudflare and to the state Secrets.
[leader_election]
enabled = true
lease_name = {{ include "syncd.leaseName" . | quote }}
lease_duration_seconds = {{ .Values.ha.leaseDurationSeconds }}
renew_deadline_seconds = {{ .Values.ha.renewDeadlineSeconds }}
retry_period_seconds = {{ .Values.ha.retryPeriodSeconds }}

# The records live in the Secrets {{ include "syncd.statePrefix" . }}-0..{{ sub .Values.ha.stateSecretCount 1 }} (created by this chart), not on a volume.
[state]
backend = "kubernetes"

[state.kubernetes]
secret_name_prefix = {{ include "syncd.statePrefix" . | quote }}
secret_count = {{ .Values.ha.stateSecretCount }}

# Both replicas must key the value fingerprints alike: the key comes from a Secret.
[sync.fingerprint_key]
file = "/etc/syncd/fingerprint/key"
{{- end }}
{{- if .Values.vaultNotifications.enabled }}

# --- appended by the chart: vaultNotifications.enabled ---
[notifications]
# Vault's socket audit device connects here (containerPort "audit", Service port "audit").
audit_listen = "0.0.0.0:{{ .Values.vaultNotifications.port }}"
{{- end }}
{{ end -}}
