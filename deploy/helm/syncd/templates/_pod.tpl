{{/*
The pod of both workloads (deploy/base/statefulset.yaml and deploy/components/ha/deployment.yaml):
the restricted security context, probes on /healthz and /readyz, the config and credential files
mounted read-only, writable only /tmp (memory) and, for the single replica, the state volume.
*/}}
{{- define "syncd.podTemplate" -}}
metadata:
  labels:
    {{- include "syncd.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/component: secret-sync
    app.kubernetes.io/part-of: syncd
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    kubectl.kubernetes.io/default-container: syncd
    {{- if not .Values.existingConfigMap }}
    # A changed config rolls the pods (kustomize: the ConfigMap's hash suffix).
    checksum/config: {{ include "syncd.config" . | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "syncd.fullname" . }}
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  enableServiceLinks: false
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if .Values.affinity }}
  affinity:
    {{- toYaml .Values.affinity | nindent 4 }}
  {{- else if .Values.ha.enabled }}
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "syncd.selectorLabels" . | nindent 14 }}
  {{- end }}
  {{- if .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml .Values.topologySpreadConstraints | nindent 4 }}
  {{- else if .Values.ha.enabled }}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: topology.kubernetes.io/zone
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "syncd.selectorLabels" . | nindent 10 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: syncd
      image: {{ include "syncd.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["run", "--config", "/etc/syncd/config.toml"]
      ports:
        - name: http
          containerPort: 8080
          protocol: TCP
        {{- if .Values.vaultNotifications.enabled }}
        - name: audit
          containerPort: {{ .Values.vaultNotifications.port }}
          protocol: TCP
        {{- end }}
      env:
        - name: PYTHONUNBUFFERED
          value: "1"
        {{- if .Values.ha.enabled }}
        # The leader-election identity ([leader_election] identity defaults to it).
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- end }}
        {{- range $name, $value := .Values.env }}
        - name: {{ $name }}
          value: {{ $value | toString | quote }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.envFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      startupProbe:
        # Start-up includes the Vault login and opening the state store: allow up to 60 s.
        httpGet:
          path: /healthz
          port: http
        periodSeconds: 2
        failureThreshold: 30
        timeoutSeconds: 2
      livenessProbe:
        # /healthz fails when no cycle finished for 3 intervals + the cycle timeout.
        httpGet:
          path: /healthz
          port: http
        periodSeconds: 15
        failureThreshold: 3
        timeoutSeconds: 3
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        periodSeconds: 5
        failureThreshold: 2
        timeoutSeconds: 2
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/syncd/config.toml
          subPath: config.toml
          readOnly: true
        - name: cloudflare-token
          mountPath: /etc/syncd/cloudflare
          readOnly: true
        {{- if .Values.ha.enabled }}
        - name: fingerprint-key
          mountPath: /etc/syncd/fingerprint
          readOnly: true
        {{- end }}
        - name: vault-token
          mountPath: /var/run/secrets/vault
          readOnly: true
        {{- if .Values.ha.enabled }}
        - name: kube-api-access
          mountPath: /var/run/secrets/kubernetes.io/serviceaccount
          readOnly: true
        {{- else }}
        - name: state
          mountPath: /var/lib/syncd
        {{- end }}
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: config
      configMap:
        name: {{ include "syncd.configMapName" . }}
    - name: cloudflare-token
      # A directory mount (no subPath) so a rotated Secret reaches the pod.
      secret:
        secretName: {{ include "syncd.cloudflareSecret" . }}
        defaultMode: 0440
        items:
          - key: {{ .Values.cloudflare.tokenKey }}
            path: token
    {{- if .Values.ha.enabled }}
    - name: fingerprint-key
      secret:
        secretName: {{ include "syncd.fingerprintSecret" . }}
        defaultMode: 0440
        items:
          - key: {{ .Values.ha.fingerprintKey.key }}
            path: key
    {{- end }}
    - name: vault-token
      # A bound token only Vault accepts, rotated by the kubelet; syncd re-reads it on each login.
      projected:
        defaultMode: 0440
        sources:
          - serviceAccountToken:
              audience: {{ .Values.vault.tokenAudience }}
              expirationSeconds: {{ .Values.vault.tokenExpirationSeconds }}
              path: token
    {{- if .Values.ha.enabled }}
    - name: kube-api-access
      # What automountServiceAccountToken would mount, for this pod only: an API token, the
      # cluster CA and the namespace, where in-cluster clients look for them.
      projected:
        defaultMode: 0440
        sources:
          - serviceAccountToken:
              expirationSeconds: 3607
              path: token
          - configMap:
              name: kube-root-ca.crt
              items:
                - key: ca.crt
                  path: ca.crt
          - downwardAPI:
              items:
                - path: namespace
                  fieldRef:
                    fieldPath: metadata.namespace
    {{- end }}
    - name: tmp
      emptyDir:
        medium: Memory
        sizeLimit: 16Mi
{{- end -}}
