{{/* The scheduler container (name/image excluded): the command of
scaleml.stack.scheduler_command(host="0.0.0.0"), shared by the Deployment and the DaskCluster. */}}
{{- define "scaleml.scheduler.container" -}}
command:
  - dask
  - scheduler
  - --host
  - 0.0.0.0
  - --port
  - "8786"
  - --dashboard-address
  - 0.0.0.0:8787
  - --preload
  - scaleml.dashboard
env:
  {{- include "scaleml.env" . | nindent 2 }}
envFrom:
  {{- include "scaleml.envFrom" . | nindent 2 }}
ports:
  - name: tcp-comm
    containerPort: 8786
  - name: http-dashboard
    containerPort: 8787
readinessProbe:
  httpGet: {path: /health, port: http-dashboard}
  periodSeconds: 5
livenessProbe:
  httpGet: {path: /health, port: http-dashboard}
  initialDelaySeconds: 15
  periodSeconds: 15
  failureThreshold: 4
resources:
  {{- toYaml .Values.dask.scheduler.resources | nindent 2 }}
volumeMounts:
  {{- include "scaleml.scratchMounts" . | nindent 2 }}
{{- end -}}

{{/* The worker container (name/image excluded): scaleml.stack.worker_command(host=$(POD_IP),
name=$(POD_NAME), local_directory=/scratch, dashboard_port=8790). */}}
{{- define "scaleml.worker.container" -}}
{{- $mem := .Values.dask.worker.memory -}}
command:
  - dask
  - worker
  - {{ include "scaleml.schedulerAddress" . }}
  - --host
  - $(POD_IP)
  - --nthreads
  - {{ include "scaleml.workerThreads" . | quote }}
  - --memory-limit
  - {{ include "scaleml.workerMemory" . | quote }}
  - --name
  - $(POD_NAME)
  - --local-directory
  - /scratch
  - --dashboard-address
  - $(POD_IP):8790
env:
  - name: POD_IP
    valueFrom:
      fieldRef: {fieldPath: status.podIP}
  - name: POD_NAME
    valueFrom:
      fieldRef: {fieldPath: metadata.name}
  - name: MALLOC_MMAP_THRESHOLD_
    value: "33554432"
  - name: MALLOC_TRIM_THRESHOLD_
    value: "67108864"
  - name: DASK_DISTRIBUTED__WORKER__MEMORY__TARGET
    value: {{ $mem.target | quote }}
  - name: DASK_DISTRIBUTED__WORKER__MEMORY__SPILL
    value: {{ $mem.spill | quote }}
  - name: DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE
    value: {{ $mem.pause | quote }}
  - name: DASK_DISTRIBUTED__WORKER__MEMORY__TERMINATE
    value: {{ $mem.terminate | quote }}
  {{- include "scaleml.env" . | nindent 2 }}
envFrom:
  {{- include "scaleml.envFrom" . | nindent 2 }}
ports:
  - name: http-dashboard
    containerPort: 8790
readinessProbe:
  httpGet: {path: /health, port: http-dashboard}
  periodSeconds: 10
livenessProbe:
  httpGet: {path: /health, port: http-dashboard}
  initialDelaySeconds: 30
  periodSeconds: 15
  failureThreshold: 4
resources:
  {{- toYaml .Values.dask.worker.resources | nindent 2 }}
volumeMounts:
  {{- include "scaleml.scratchMounts" . | nindent 2 }}
{{- end -}}
