{{/* Names, labels and the pieces the sensor and pipeline templates share. */}}

{{- define "edgeward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "edgeward.fullname" -}}
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

{{/* A component's object name: edgeward.component (dict "root" $ "component" "sensor"). */}}
{{- define "edgeward.component" -}}
{{- printf "%s-%s" (include "edgeward.fullname" .root | trunc 54 | trimSuffix "-") .component }}
{{- end }}

{{- define "edgeward.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "edgeward.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: edgeward
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of a component's objects: edgeward.componentLabels (dict "root" $ "component" "sensor"). */}}
{{- define "edgeward.componentLabels" -}}
{{ include "edgeward.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "edgeward.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edgeward.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "edgeward.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "edgeward.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "edgeward.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "edgeward.rulesConfigMap" -}}
{{- default (include "edgeward.component" (dict "root" . "component" "rules")) .Values.rules.existingConfigMap }}
{{- end }}

{{/*
A component's Kafka settings: kafka with the component's kafka overrides
(sensor.kafka, pipeline.kafka) merged over it, as YAML, after checking that
TLS and SASL reference their Secrets. Use with fromYaml:
  $k := include "edgeward.kafka" (dict "root" $ "component" "sensor") | fromYaml
*/}}
{{- define "edgeward.kafka" -}}
{{- $over := index .root.Values .component | default dict }}
{{- $k := mergeOverwrite (deepCopy .root.Values.kafka) (deepCopy ($over.kafka | default dict)) }}
{{- $where := printf "kafka (with %s.kafka)" .component }}
{{- if $k.tls.enabled }}
{{- if not $k.tls.existingSecret }}
{{- fail (printf "%s: tls.enabled needs tls.existingSecret, the Secret holding %s" $where $k.tls.caKey) }}
{{- end }}
{{- if ne (empty $k.tls.certKey) (empty $k.tls.keyKey) }}
{{- fail (printf "%s: tls.certKey and tls.keyKey go together (mutual TLS); set both or neither" $where) }}
{{- end }}
{{- end }}
{{- if $k.sasl.mechanism }}
{{- if or (not $k.sasl.username) (not $k.sasl.existingSecret) }}
{{- fail (printf "%s: sasl.mechanism %s needs sasl.username and sasl.existingSecret (the Secret holding the password under sasl.passwordKey)" $where $k.sasl.mechanism) }}
{{- end }}
{{- end }}
{{- toYaml $k }}
{{- end }}

{{/* The tls and sasl blocks of a daemon's kafka config, for the Kafka settings k. */}}
{{- define "edgeward.kafkaAuthConfig" -}}
tls:
  enabled: {{ .tls.enabled }}
  {{- if .tls.enabled }}
  ca_file: {{ ternary "/etc/edgeward/kafka/tls/ca.crt" "" (not (empty .tls.caKey)) | quote }}
  cert_file: {{ ternary "/etc/edgeward/kafka/tls/tls.crt" "" (not (empty .tls.certKey)) | quote }}
  key_file: {{ ternary "/etc/edgeward/kafka/tls/tls.key" "" (not (empty .tls.keyKey)) | quote }}
  insecure_skip_verify: {{ .tls.insecureSkipVerify }}
  {{- end }}
sasl:
  mechanism: {{ .sasl.mechanism | quote }}
  {{- if .sasl.mechanism }}
  username: {{ .sasl.username | quote }}
  password_file: /etc/edgeward/kafka/sasl/password
  {{- end }}
{{- end }}

{{/* The volumeMounts for the Kafka Secrets, for the Kafka settings k. */}}
{{- define "edgeward.kafkaVolumeMounts" -}}
{{- if .tls.enabled }}
- name: kafka-tls
  mountPath: /etc/edgeward/kafka/tls
  readOnly: true
{{- end }}
{{- if .sasl.mechanism }}
- name: kafka-sasl
  mountPath: /etc/edgeward/kafka/sasl
  readOnly: true
{{- end }}
{{- end }}

{{/* The volumes for the Kafka Secrets, for the Kafka settings k. */}}
{{- define "edgeward.kafkaVolumes" -}}
{{- if .tls.enabled }}
- name: kafka-tls
  secret:
    secretName: {{ .tls.existingSecret }}
    defaultMode: 0440
    items:
      {{- with .tls.caKey }}
      - key: {{ . }}
        path: ca.crt
      {{- end }}
      {{- with .tls.certKey }}
      - key: {{ . }}
        path: tls.crt
      {{- end }}
      {{- with .tls.keyKey }}
      - key: {{ . }}
        path: tls.key
      {{- end }}
{{- end }}
{{- if .sasl.mechanism }}
- name: kafka-sasl
  secret:
    secretName: {{ .sasl.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .sasl.passwordKey }}
        path: password
{{- end }}
{{- end }}

{{/* The sensor's capabilities: what its capture mode and session sources need. */}}
{{- define "edgeward.sensorCapabilities" -}}
{{- $caps := list }}
{{- if eq .Values.sensor.mode "ebpf" }}
{{- $caps = list "BPF" "NET_ADMIN" "PERFMON" }}
{{- else }}
{{- $caps = list "NET_RAW" }}
{{- end }}
{{- if .Values.sensor.sessions.wireguard }}
{{- $caps = append $caps "NET_ADMIN" }}
{{- end }}
{{- $caps = concat $caps .Values.sensor.extraCapabilities | uniq | sortAlpha }}
{{- toYaml $caps }}
{{- end }}

{{/* Host directories the session sources read from (feed, openvpnStatus), de-duplicated. */}}
{{- define "edgeward.sessionDirs" -}}
{{- $dirs := list }}
{{- with .Values.sensor.sessions.feed }}{{ $dirs = append $dirs (dir .) }}{{ end }}
{{- with .Values.sensor.sessions.openvpnStatus }}{{ $dirs = append $dirs (dir .) }}{{ end }}
{{- toYaml ($dirs | uniq) }}
{{- end }}

{{/* Bytes in a Kubernetes quantity of the form the schema allows (2Gi, 1.5G, 512M), as a float. */}}
{{- define "edgeward.quantityBytes" -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" . }}
{{- $unit := trimPrefix $num . }}
{{- $scale := dict "" 1 "m" 0.001 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "P" 1000000000000000 "E" 1000000000000000000
  "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "Pi" 1125899906842624 "Ei" 1152921504606846976 }}
{{- mulf (float64 $num) (index $scale $unit) }}
{{- end }}
