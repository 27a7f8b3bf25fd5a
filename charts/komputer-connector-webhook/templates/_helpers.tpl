{{/*
Names are fixed, as in manifests/base: the service's defaults (--webhook-config-name,
--cert-secret-name, --lease-name, --service-name) and its policy ConfigMap name are these.
*/}}
{{- define "kcw.name" -}}komputer-connector-webhook{{- end }}
{{- define "kcw.tlsSecretName" -}}komputer-connector-webhook-tls{{- end }}

{{/*
The namespace label that opts a namespace in. Not a value: the service checks the same label
itself (src/injection/detect.ts) and the platform sets it, so another label would make the
API server send requests the service then ignores.
*/}}
{{- define "kcw.injectionLabelKey" -}}komputer.ai/connector-injection{{- end }}
{{- define "kcw.injectionLabelValue" -}}enabled{{- end }}

{{/*
Labels every object carries. The first two are the ones manifests/base puts on everything;
the rest are Helm's conventional ones (normalised away by the chart/manifests sameness test).
*/}}
{{- define "kcw.labels" -}}
app.kubernetes.io/name: {{ include "kcw.name" . }}
app.kubernetes.io/part-of: komputer
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* metadata.labels (and annotations when there are any) of a rendered object. */}}
{{- define "kcw.metadata" -}}
labels:
  {{- include "kcw.labels" . | nindent 2 }}
{{- with .Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The pods' selector: immutable once a Deployment exists, so never add to it. */}}
{{- define "kcw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kcw.name" . }}
app.kubernetes.io/component: webhook
{{- end }}

{{- define "kcw.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- .Values.image.repository }}:{{ $tag }}
{{- with .Values.image.digest }}@{{ . }}{{ end }}
{{- end }}

{{/* Whether the service runs in the cluster (no webhook.url). */}}
{{- define "kcw.inCluster" -}}
{{- if not .Values.webhook.url }}true{{ end }}
{{- end }}

{{/* `files` for cert-manager and existing-secret, `self` otherwise. */}}
{{- define "kcw.certFiles" -}}
{{- if has .Values.certificates.mode (list "cert-manager" "existing-secret") }}true{{ end }}
{{- end }}

{{/* Checks the combinations the schema cannot express with a readable message. */}}
{{- define "kcw.validate" -}}
{{- if eq .Values.certificates.mode "existing-secret" }}
{{- if not .Values.certificates.existingSecret.name }}
{{- fail "certificates.existingSecret.name is required when certificates.mode is existing-secret (a kubernetes.io/tls Secret in the release namespace)" }}
{{- end }}
{{- if not .Values.certificates.existingSecret.caBundle }}
{{- fail "certificates.existingSecret.caBundle is required when certificates.mode is existing-secret (PEM of the CA that signed the Secret's tls.crt: the API server trusts only it)" }}
{{- end }}
{{- end }}
{{- if include "kcw.inCluster" . }}
{{- $https := int .Values.webhook.port }}
{{- $metrics := int .Values.metrics.port }}
{{- if eq $https $metrics }}
{{- fail (printf "webhook.port and metrics.port are both %d: the HTTPS admission endpoint and the plain-HTTP metrics/probe endpoint need their own ports" $https) }}
{{- end }}
{{- if .Values.hostNetwork }}
{{- range $name, $port := dict "webhook.port" $https "metrics.port" $metrics }}
{{- if lt $port 1024 }}
{{- fail (printf "%s=%d with hostNetwork: the service runs as a non-root user without capabilities and cannot bind a node port below 1024; pick a free port of 1024 or more (e.g. 10260)" $name $port) }}
{{- end }}
{{- if eq $port 10250 }}
{{- fail (printf "%s=10250 with hostNetwork: that is the kubelet's port on every node; pick another free port (e.g. 10260)" $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (include "kcw.inCluster" .) }}
{{- $max := toString $pdb.maxUnavailable }}
{{- if ne $max "" }}
{{- if has $max (list "0" "0%") }}
{{- fail (printf "podDisruptionBudget.maxUnavailable=%s lets no replica be evicted, so every node drain that would evict one blocks: use 1 (or a percentage above 0), or podDisruptionBudget.enabled=false" $max) }}
{{- end }}
{{- else }}
{{- $min := toString $pdb.minAvailable }}
{{- if or (eq $min "100%") (and (not (hasSuffix "%" $min)) (ge (int $pdb.minAvailable) (int .Values.replicaCount))) }}
{{- fail (printf "podDisruptionBudget.minAvailable=%s with replicaCount=%d lets no replica be evicted, so every node drain that would evict one blocks: run replicaCount=2 or more (the pod webhook fails closed), or set podDisruptionBudget.maxUnavailable=1, or podDisruptionBudget.enabled=false" $min (int .Values.replicaCount)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Annotations of a `helm test` hook object: (list $ weight). */}}
{{- define "kcw.testHook" -}}
{{- $root := index . 0 -}}
helm.sh/hook: test
helm.sh/hook-weight: {{ index . 1 | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- with $root.Values.commonAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}
