{{/* The release's base name, at most 63 characters (DNS label). */}}
{{- define "scaleml.fullname" -}}
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

{{/* A component's object name: base name (cut to leave room) + "-" + component. */}}
{{- define "scaleml.component" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $base := include "scaleml.fullname" $root | trunc (int (sub 62 (len $component))) | trimSuffix "-" -}}
{{- printf "%s-%s" $base $component -}}
{{- end -}}

{{- define "scaleml.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "scaleml.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of a component: (list $ "gateway"). */}}
{{- define "scaleml.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "scaleml.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Recommended labels of a component's objects. */}}
{{- define "scaleml.labels" -}}
{{- $root := index . 0 -}}
{{ include "scaleml.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: scaleml
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ include "scaleml.chart" $root }}
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "scaleml.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "scaleml.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "scaleml.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "scaleml.schedulerAddress" -}}
tcp://{{ include "scaleml.component" (list . "scheduler") }}:8786
{{- end -}}

{{- define "scaleml.mlflowUrl" -}}
http://{{ include "scaleml.component" (list . "mlflow") }}:{{ .Values.mlflow.service.port }}
{{- end -}}

{{/* Pod-level settings shared by every scaleml pod. */}}
{{- define "scaleml.podSpec" -}}
serviceAccountName: {{ include "scaleml.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The scratch emptyDir of every scaleml pod. */}}
{{- define "scaleml.scratchVolumes" -}}
- name: scratch
  emptyDir:
    sizeLimit: {{ .Values.scratch.sizeLimit }}
{{- end -}}

{{- define "scaleml.scratchMounts" -}}
- name: scratch
  mountPath: /scratch
- name: scratch
  mountPath: /tmp
  subPath: tmp
- name: scratch
  mountPath: /home/scaleml
  subPath: home
{{- end -}}

{{/* Environment of every scaleml container: where the scheduler and MLflow are, the
settings ConfigMap, extra variables. */}}
{{- define "scaleml.env" -}}
- name: SCALEML_SCHEDULER
  value: {{ include "scaleml.schedulerAddress" . | quote }}
- name: SCALEML_MLFLOW_TRACKING_URI
  value: {{ include "scaleml.mlflowUrl" . | quote }}
- name: SCALEML_CACHE_DIR
  value: /scratch
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "scaleml.envFrom" -}}
- configMapRef:
    name: {{ include "scaleml.component" (list . "settings") }}
{{- end -}}

{{- define "scaleml.image.block" -}}
image: {{ include "scaleml.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}

{{/* Worker threads: dask.worker.nthreads, else the CPU limit (rounded up), else the request. */}}
{{- define "scaleml.workerThreads" -}}
{{- $w := .Values.dask.worker -}}
{{- if $w.nthreads -}}
{{- $w.nthreads -}}
{{- else -}}
{{- $cpu := toString (or (dig "limits" "cpu" "" $w.resources) (dig "requests" "cpu" "1" $w.resources)) -}}
{{- if hasSuffix "m" $cpu -}}
{{- max 1 (div (add (trimSuffix "m" $cpu | atoi) 999) 1000) -}}
{{- else -}}
{{- max 1 (ceil (float64 $cpu)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "scaleml.workerMemory" -}}
{{- dig "limits" "memory" "auto" .Values.dask.worker.resources -}}
{{- end -}}

{{/* The in-chart PostgreSQL's host and password Secret. */}}
{{- define "scaleml.postgresHost" -}}
{{ include "scaleml.component" (list . "postgresql") }}
{{- end -}}

{{- define "scaleml.postgresSecret" -}}
{{- default (include "scaleml.component" (list . "postgresql")) .Values.postgresql.auth.existingSecret -}}
{{- end -}}

{{/* The coordinator's job store URL as EnvVars (SCALEML_COORDINATOR_DB last). */}}
{{- define "scaleml.coordinatorDbEnv" -}}
{{- $db := .Values.coordinator.database -}}
{{- if $db.existingSecret -}}
- name: SCALEML_COORDINATOR_DB
  valueFrom:
    secretKeyRef:
      name: {{ $db.existingSecret }}
      key: {{ $db.existingSecretKey }}
{{- else if $db.url -}}
- name: SCALEML_COORDINATOR_DB
  valueFrom:
    secretKeyRef:
      name: {{ include "scaleml.component" (list . "database") }}
      key: coordinator-url
{{- else if .Values.postgresql.enabled -}}
- name: POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "scaleml.postgresSecret" . }}
      key: password
- name: SCALEML_COORDINATOR_DB
  value: "postgresql://{{ .Values.postgresql.auth.username }}:$(POSTGRES_PASSWORD)@{{ include "scaleml.postgresHost" . }}:5432/scaleml"
{{- else -}}
- name: SCALEML_COORDINATOR_DB
  value: sqlite:////scratch/scaleml-coordinator.db
{{- end -}}
{{- end -}}

{{/* A Secret value kept across upgrades: the existing one, else random. (list $ secretName key) */}}
{{- define "scaleml.keptRandom" -}}
{{- $root := index . 0 -}}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace (index . 1) -}}
{{- if and $existing (hasKey $existing.data (index . 2)) -}}
{{- index $existing.data (index . 2) | b64dec -}}
{{- else -}}
{{- randAlphaNum 40 -}}
{{- end -}}
{{- end -}}
