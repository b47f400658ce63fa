{{- define "neon-todo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "neon-todo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "neon-todo.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "neon-todo.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "neon-todo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "neon-todo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "neon-todo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "neon-todo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "neon-todo.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The migration Job runs as a pre-install/pre-upgrade hook unless the database is part of the
     release (postgresql.enabled): hooks run before the release's own resources exist. */}}
{{- define "neon-todo.migrationsAsHook" -}}
{{- if and .Values.migrations.enabled (not .Values.postgresql.enabled) -}}true{{- end -}}
{{- end -}}

{{/* The Secret with DATABASE_URL, DATABASE_URL_UNPOOLED, DATABASE_URL_RO. */}}
{{- define "neon-todo.dbSecret" -}}
{{- if .Values.database.existingSecret -}}
{{- .Values.database.existingSecret -}}
{{- else if or .Values.postgresql.enabled .Values.database.url -}}
{{- printf "%s-db" (include "neon-todo.fullname" .) -}}
{{- else -}}
{{- fail "neon-todo: set database.existingSecret (a Secret with DATABASE_URL and DATABASE_URL_UNPOOLED), or database.url and database.urlUnpooled, or postgresql.enabled=true for development" -}}
{{- end -}}
{{- end -}}

{{/* The Secret with JWT_SECRET, or empty when tokens are verified with a JWKS only. */}}
{{- define "neon-todo.authSecret" -}}
{{- if .Values.auth.existingSecret -}}
{{- .Values.auth.existingSecret -}}
{{- else if .Values.auth.jwtSecret -}}
{{- printf "%s-auth" (include "neon-todo.fullname" .) -}}
{{- else if not (or .Values.auth.jwksUrl (eq (toString .Values.env.APP_ENV) "development")) -}}
{{- fail "neon-todo: set auth.existingSecret or auth.jwtSecret (HS256), or auth.jwksUrl (Better Auth, Clerk, Auth0 ...); only APP_ENV=development runs without" -}}
{{- end -}}
{{- end -}}

{{- define "neon-todo.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .Values.hostNetwork }}
hostNetwork: true
{{- end }}
{{- end -}}

{{/* The in-cluster PostgreSQL's password: kept from the existing Secret on upgrades, else generated. */}}
{{- define "neon-todo.pgPassword" -}}
{{- $name := printf "%s-db" (include "neon-todo.fullname" .) -}}
{{- $old := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- if .Values.postgresql.password -}}
{{- .Values.postgresql.password -}}
{{- else if and $old $old.data (hasKey $old.data "POSTGRES_PASSWORD") -}}
{{- index $old.data "POSTGRES_PASSWORD" | b64dec -}}
{{- else -}}
{{- randAlphaNum 24 -}}
{{- end -}}
{{- end -}}

{{/* The API pods only: the migration Job's and the development PostgreSQL's pods share the
     release's labels and must not be selected by the Service, the PDB or the ServiceMonitor. */}}
{{- define "neon-todo.apiSelectorLabels" -}}
{{ include "neon-todo.selectorLabels" . }}
app.kubernetes.io/component: api
{{- end -}}

{{/* The Secret holding METRICS_TOKEN, or "" when none is set. */}}
{{- define "neon-todo.metricsSecret" -}}
{{- if .Values.metrics.existingSecret -}}
{{- .Values.metrics.existingSecret -}}
{{- else if .Values.metrics.token -}}
{{- printf "%s-metrics" (include "neon-todo.fullname" .) -}}
{{- end -}}
{{- end -}}
