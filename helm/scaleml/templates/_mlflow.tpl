{{/* MLflow's backend store URI ($(VAR) references are expanded by Kubernetes from the env);
psycopg 3 is the PostgreSQL driver in the image. */}}
{{- define "scaleml.mlflow.backendStoreUri" -}}
{{- $pg := .Values.mlflow.backendStore.postgres -}}
{{- if .Values.postgresql.enabled -}}
postgresql+psycopg://{{ .Values.postgresql.auth.username }}:$(MLFLOW_DB_PASSWORD)@{{ include "scaleml.postgresHost" . }}:5432/mlflow
{{- else if $pg.enabled -}}
postgresql+psycopg://{{ $pg.user }}:$(MLFLOW_DB_PASSWORD)@{{ $pg.host }}:{{ $pg.port }}/{{ $pg.database }}
{{- else -}}
sqlite:////mlflow/mlflow.db
{{- end -}}
{{- end -}}

{{- define "scaleml.mlflow.artifactsDestination" -}}
{{- $a := .Values.mlflow.artifactRoot -}}
{{- if $a.s3.enabled -}}
s3://{{ $a.s3.bucket }}{{ with $a.s3.path }}/{{ . }}{{ end }}
{{- else if $a.gcs.enabled -}}
gs://{{ $a.gcs.bucket }}{{ with $a.gcs.path }}/{{ . }}{{ end }}
{{- else if $a.azureBlob.enabled -}}
wasbs://{{ $a.azureBlob.container }}@{{ $a.azureBlob.storageAccount }}.blob.core.windows.net{{ with $a.azureBlob.path }}/{{ . }}{{ end }}
{{- else -}}
/mlflow/artifacts
{{- end -}}
{{- end -}}

{{/* The MLflow container's environment: the database password, the artifact store's
credentials. */}}
{{- define "scaleml.mlflow.env" -}}
{{- $pg := .Values.mlflow.backendStore.postgres -}}
{{- $a := .Values.mlflow.artifactRoot -}}
- name: HOME
  value: /home/scaleml
# MLflow's own job runner (GenAI jobs, a pool of huey consumers) is not used by scaleml
- name: MLFLOW_SERVER_ENABLE_JOB_EXECUTION
  value: "false"
{{- if .Values.postgresql.enabled }}
- name: MLFLOW_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "scaleml.postgresSecret" . }}
      key: password
{{- else if $pg.enabled }}
- name: MLFLOW_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- if .Values.mlflow.backendStore.existingDatabaseSecret.name }}
      name: {{ .Values.mlflow.backendStore.existingDatabaseSecret.name }}
      key: {{ .Values.mlflow.backendStore.existingDatabaseSecret.passwordKey }}
      {{- else }}
      name: {{ include "scaleml.component" (list . "database") }}
      key: mlflow-password
      {{- end }}
{{- end }}
{{- if $a.s3.enabled }}
{{- with $a.s3.endpointUrl }}
- name: MLFLOW_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with $a.s3.existingSecret.name }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $a.s3.existingSecret.keyOfAccessKeyId }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $a.s3.existingSecret.keyOfSecretAccessKey }}
{{- end }}
{{- end }}
{{- if and $a.azureBlob.enabled $a.azureBlob.existingSecret.name }}
- name: AZURE_STORAGE_CONNECTION_STRING
  valueFrom:
    secretKeyRef:
      name: {{ $a.azureBlob.existingSecret.name }}
      key: {{ $a.azureBlob.existingSecret.keyOfConnectionString }}
{{- end }}
{{- end -}}
