{{/* The chart name, or nameOverride. */}}
{{- define "signoff.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full resource name: fullnameOverride, or release name + chart name
(the release name alone when it already holds the chart name). */}}
{{- define "signoff.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "signoff.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "signoff.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signoff.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "signoff.labels" -}}
helm.sh/chart: {{ include "signoff.chart" . }}
{{ include "signoff.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "signoff.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "signoff.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "signoff.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when storage.driver is postgres, "" for bolt; fails for
anything else. */}}
{{- define "signoff.postgres" -}}
{{- $d := .Values.storage.driver }}
{{- if eq $d "postgres" }}true
{{- else if ne $d "bolt" }}
{{- fail (printf "storage.driver is %q: use bolt (one replica, a volume) or postgres (several replicas, one database)" $d) }}
{{- end }}
{{- end }}

{{/* The number of replicas: replicaCount, or 1 with bolt and 2 with
postgres when it is unset. */}}
{{- define "signoff.replicas" -}}
{{- if kindIs "invalid" .Values.replicaCount }}
{{- ternary 2 1 (eq (include "signoff.postgres" .) "true") }}
{{- else }}
{{- int .Values.replicaCount }}
{{- end }}
{{- end }}

{{/* Where the bbolt database lives: the image's data volume. */}}
{{- define "signoff.dataDir" -}}/data{{- end }}

{{/* Where the PostgreSQL DSN file is mounted. */}}
{{- define "signoff.dsnDir" -}}/run/secrets/signoff-postgres{{- end }}

{{- define "signoff.configDir" -}}/etc/signoff{{- end }}

{{- define "signoff.configMapName" -}}
{{- default (printf "%s-config" (include "signoff.fullname" .)) .Values.existingConfigMap }}
{{- end }}

{{- define "signoff.configKey" -}}
{{- if .Values.existingConfigMap }}{{ .Values.existingConfigMapKey }}{{ else }}signoff.yaml{{ end }}
{{- end }}

{{/* The Secret holding the config's secret files, or "" for none. */}}
{{- define "signoff.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if .Values.secrets.files }}
{{- printf "%s-secrets" (include "signoff.fullname" .) }}
{{- end }}
{{- end }}

{{- define "signoff.postgresSecretName" -}}
{{- default (printf "%s-postgres" (include "signoff.fullname" .)) .Values.storage.postgres.existingSecret }}
{{- end }}

{{/* The values of every *_file key in a config map, one a line, found at
any depth (maps and lists). */}}
{{- define "signoff.fileRefs" -}}
{{- if kindIs "map" . }}
{{- range $k, $v := . }}
{{- if and (hasSuffix "_file" $k) (kindIs "string" $v) }}
{{ $v }}
{{- else }}
{{- include "signoff.fileRefs" $v }}
{{- end }}
{{- end }}
{{- else if kindIs "slice" . }}
{{- range . }}
{{- include "signoff.fileRefs" . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Fails on a secret written in plain text anywhere in config (list
PATH VALUE): it would land in the ConfigMap, which far more people may
read than Secrets. The keys are signoff's secrets, each of which has a
*_file twin. */}}
{{- define "signoff.noPlainSecrets" -}}
{{- $path := index . 0 }}
{{- $v := index . 1 }}
{{- if kindIs "map" $v }}
{{- range $k, $x := $v }}
{{- if and (has $k (list "app_password" "app_token" "bearer_token" "bot_token" "client_secret" "dsn" "secret" "signing_key" "signing_secret" "token_encryption_key")) $x }}
{{- fail (printf "config%s.%s is a secret in plain text, which would land in the ConfigMap: put it in secrets.files (or secrets.existingSecret) and set config%s.%s_file to its path instead" $path $k $path $k) }}
{{- end }}
{{- include "signoff.noPlainSecrets" (list (printf "%s.%s" $path $k) $x) }}
{{- end }}
{{- else if kindIs "slice" $v }}
{{- range $i, $x := $v }}
{{- include "signoff.noPlainSecrets" (list (printf "%s[%d]" $path $i) $x) }}
{{- end }}
{{- end }}
{{- end }}

{{/* signoff's configuration as YAML: config with listen and storage set
by the chart. */}}
{{- define "signoff.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- include "signoff.noPlainSecrets" (list "" $cfg) }}
{{- range $k := list "listen" "storage" }}
{{- if hasKey $cfg $k }}
{{- fail (printf "config.%s is set by the chart: leave it out of config (use containerPort and storage.* instead)" $k) }}
{{- end }}
{{- end }}
{{- $storage := dict "driver" .Values.storage.driver }}
{{- if include "signoff.postgres" . }}
{{- $_ := set $storage "dsn_file" (printf "%s/dsn" (include "signoff.dsnDir" .)) }}
{{- else }}
{{- $_ := set $storage "path" (printf "%s/signoff.db" (include "signoff.dataDir" .)) }}
{{- end }}
{{- $_ := set $cfg "listen" (printf ":%d" (int .Values.containerPort)) }}
{{- $_ := set $cfg "storage" $storage }}
{{- toYaml $cfg }}
{{- end }}

{{/* Refuses values that cannot work, saying what to change. */}}
{{- define "signoff.validate" -}}
{{- $pg := include "signoff.postgres" . }}
{{- $replicas := int (include "signoff.replicas" .) }}
{{- if lt $replicas 0 }}
{{- fail (printf "replicaCount is %d: it must be 0 or more" $replicas) }}
{{- end }}
{{- if and (not $pg) (gt $replicas 1) }}
{{- fail (printf "replicaCount is %d but storage.driver is bolt: bbolt lets one process open its database, so bolt runs exactly one replica. For several replicas use PostgreSQL: --set storage.driver=postgres with storage.postgres.existingSecret (or storage.postgres.dsn)" $replicas) }}
{{- end }}
{{- if and $pg (not .Values.storage.postgres.existingSecret) (not .Values.storage.postgres.dsn) }}
{{- fail "storage.driver is postgres but no DSN is given: set storage.postgres.existingSecret (a Secret holding the DSN under storage.postgres.secretKey) or --set-file storage.postgres.dsn=FILE" }}
{{- end }}
{{- if and .Values.existingConfigMap (not .Values.existingConfigMapKey) }}
{{- fail "existingConfigMapKey is empty: name the key of existingConfigMap that holds signoff's YAML" }}
{{- end }}
{{- if not .Values.existingConfigMap }}
{{- $cfg := include "signoff.config" . }}
{{- if not .Values.secrets.existingSecret }}
{{- $dir := printf "%s/" (trimSuffix "/" .Values.secrets.mountPath) }}
{{- range $ref := splitList "\n" (include "signoff.fileRefs" .Values.config) }}
{{- if hasPrefix $dir $ref }}
{{- $name := trimPrefix $dir $ref }}
{{- if not (hasKey ($.Values.secrets.files | default dict) $name) }}
{{- fail (printf "config names the secret file %s but secrets.files has no %q: --set-file secrets.files.%s=FILE, or give secrets.existingSecret" $ref $name $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
