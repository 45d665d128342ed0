{{/*
Named templates shared by the manifests of this chart. The "chart." prefix keeps them apart from
the helpers of any subchart. The first part is the service chart's; the job's follows.
*/}}

{{/*
chart.name: name of the application, the chart name unless nameOverride is set.
Cut to 63 characters, the limit of a label value.
*/}}
{{- define "chart.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
chart.fullname: name of every object of the release.
fullnameOverride wins; otherwise "<release>-<name>", or just the release name when it already
contains the chart name (e.g. release "my-service" of chart "my-service" gives "my-service").
Cut to 63 characters because some fields are DNS-1123 labels.
*/}}
{{- define "chart.fullname" -}}
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

{{/*
chart.chart: chart name and version for the helm.sh/chart label ("+" is not allowed in labels).
*/}}
{{- define "chart.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
chart.labels: recommended labels (app.kubernetes.io/*) of every object.
The version label is the deployed image tag, so it changes with every promotion.
*/}}
{{- define "chart.labels" -}}
helm.sh/chart: {{ include "chart.chart" . }}
{{ include "chart.selectorLabels" . }}
app.kubernetes.io/version: {{ include "chart.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
chart.selectorLabels: the labels that select the pods of the release. They never change over
the life of a release, because the selector of a Deployment is immutable.
*/}}
{{- define "chart.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chart.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
chart.serviceAccountName: the ServiceAccount the pods run as; "default" only when the chart
creates none and no name is given.
*/}}
{{- define "chart.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chart.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
chart.imageTag: the tag to deploy, image.tag or else the chart's appVersion.
*/}}
{{- define "chart.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
chart.image: full image reference "<registry host>/<repository>:<tag>", with "@<digest>" when
image.digest is set.
*/}}
{{- define "chart.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "chart.imageTag" .) }}
{{- with .Values.image.digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
Names of the job's objects. The jobs of an environment share one namespace (and its EventBus),
so every name starts with the release's full name.
chart.sensorServiceAccount: the Sensor's identity, which may only submit this job's workflows.
chart.workflowServiceAccount: the job's code (workload identity for the storage).
chart.executorServiceAccount: Argo's init and wait containers (they report the step's outputs).
*/}}
{{- define "chart.sensorServiceAccount" -}}
{{- printf "%s-sensor" (include "chart.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chart.workflowServiceAccount" -}}
{{- printf "%s-workflow" (include "chart.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chart.executorServiceAccount" -}}
{{- printf "%s-executor" (include "chart.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chart.artifactRepository" -}}
{{- printf "%s-artifacts" (include "chart.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
chart.containerSecurityContext: the restricted container settings, with a user when given
(dict "root" $ "runAsUser" <uid or nil>).
*/}}
{{- define "chart.containerSecurityContext" -}}
{{- $context := deepCopy .root.Values.securityContext }}
{{- with .runAsUser }}
{{- $_ := set $context "runAsUser" . }}
{{- end }}
{{- toYaml $context }}
{{- end }}
