{{/* Names and labels. */}}
{{- define "herald.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "herald.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "herald.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "herald.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "herald.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "herald.gracePeriod" -}}
{{- add .Values.preStopSleepSeconds .Values.drainWindowSeconds .Values.shutdownTimeoutSeconds .Values.terminationMarginSeconds -}}
{{- end -}}

{{/*
herald.checkRef checks a value that must name a Secret (or ConfigMap), never hold the secret.
Called with (list "auth.jwtSecret" .Values.auth.jwtSecret "existingSecret").
*/}}
{{- define "herald.checkRef" -}}
{{- $path := index . 0 -}}
{{- $ref := index . 1 -}}
{{- $field := index . 2 -}}
{{- if not (kindIs "map" $ref) -}}
{{- fail (printf "%s must name a Secret ({%s: NAME, key: KEY}), not hold a value: keep secret material out of values" $path $field) -}}
{{- end -}}
{{- $name := get $ref $field | default "" | toString -}}
{{- if $name -}}
{{- if or (gt (len $name) 253) (not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" $name)) -}}
{{- fail (printf "%s.%s is not the name of a Kubernetes object: it must name a Secret or ConfigMap that holds the value, not hold the value itself" $path $field) -}}
{{- end -}}
{{- if and (ge (len $name) 32) (not (regexMatch "[-.]" $name)) -}}
{{- fail (printf "%s.%s looks like key material (%d characters, no dash): name the Secret that holds it instead" $path $field (len $name)) -}}
{{- end -}}
{{- $key := get $ref "key" | default "" | toString -}}
{{- if not (regexMatch "^[-._a-zA-Z0-9]{1,253}$" $key) -}}
{{- fail (printf "%s.key must be a key of the Secret (letters, digits, -, _ and .), not a value" $path) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Names in .Values.config the chart manages itself, with where they belong instead. */}}
{{- define "herald.managedSettings" -}}
addr: the API listens on :8080 (service.port maps it)
metrics-addr: metrics listen on metrics.port
metrics-public: metrics stay off the API port, on the metrics Service
insecure: the chart always runs with authentication
store: set persistence (mode single) or cluster.store.existingSecret
sqlite-sync: set persistence.sqliteSync
bus: set cluster.bus.existingSecret
bus-channel: set cluster.bus.channel
drain-window: set drainWindowSeconds (terminationGracePeriodSeconds is derived from it)
shutdown-timeout: set shutdownTimeoutSeconds (terminationGracePeriodSeconds is derived from it)
jwt-secret: name a Secret in auth.jwtSecret.existingSecret
jwt-secret-file: name a Secret in auth.jwtSecret.existingSecret
publisher-keys: name a Secret in auth.publisherKeys.existingSecret
publisher-key-file: name a Secret in auth.publisherKeys.existingSecret
jwt-public-keys: name a ConfigMap in auth.jwtPublicKeys.existingConfigMap
jwks-url: set auth.jwksUrl
config: set the chart's values instead
{{- end }}

{{/* herald.validate fails the render on values that would deploy something unsafe or broken. */}}
{{- define "herald.validate" -}}
{{- $v := .Values -}}
{{- if not (has $v.mode (list "single" "cluster")) -}}
{{- fail (printf "mode must be single or cluster, not %q" (toString $v.mode)) -}}
{{- end -}}
{{- include "herald.checkRef" (list "auth.jwtSecret" $v.auth.jwtSecret "existingSecret") -}}
{{- include "herald.checkRef" (list "auth.publisherKeys" $v.auth.publisherKeys "existingSecret") -}}
{{- include "herald.checkRef" (list "auth.jwtPublicKeys" $v.auth.jwtPublicKeys "existingConfigMap") -}}
{{- include "herald.checkRef" (list "cluster.store" $v.cluster.store "existingSecret") -}}
{{- include "herald.checkRef" (list "cluster.bus" $v.cluster.bus "existingSecret") -}}
{{- if not (or $v.auth.jwtSecret.existingSecret $v.auth.publisherKeys.existingSecret $v.auth.jwtPublicKeys.existingConfigMap $v.auth.jwksUrl) -}}
{{- fail "auth: configure auth.jwtSecret, auth.publisherKeys, auth.jwtPublicKeys or auth.jwksUrl: without authentication Herald refuses to listen on the pod's interfaces" -}}
{{- end -}}
{{- if and $v.auth.jwksUrl (not (hasPrefix "https://" (toString $v.auth.jwksUrl))) -}}
{{- fail "auth.jwksUrl must be an https:// URL" -}}
{{- end -}}
{{- if regexMatch "://[^/@]*:[^/@]*@" (toString $v.auth.jwksUrl) -}}
{{- fail "auth.jwksUrl holds a password: put credentials in a Secret" -}}
{{- end -}}
{{- if eq $v.mode "cluster" -}}
{{- if not $v.cluster.store.existingSecret -}}
{{- fail "mode cluster: cluster.store.existingSecret must name the Secret holding the PostgreSQL URL" -}}
{{- end -}}
{{- if not $v.cluster.bus.existingSecret -}}
{{- fail "mode cluster: cluster.bus.existingSecret must name the Secret holding the bus URL" -}}
{{- end -}}
{{- if not (has $v.cluster.bus.kind (list "redis" "nats" "amqp")) -}}
{{- fail (printf "cluster.bus.kind must be redis, nats or amqp, not %q" (toString $v.cluster.bus.kind)) -}}
{{- end -}}
{{- if lt (int $v.cluster.replicas) 1 -}}
{{- fail "cluster.replicas must be at least 1" -}}
{{- end -}}
{{- end -}}
{{- if not (has $v.persistence.sqliteSync (list "full" "normal")) -}}
{{- fail "persistence.sqliteSync must be full or normal" -}}
{{- end -}}
{{- if lt (int $v.drainWindowSeconds) 0 -}}
{{- fail "drainWindowSeconds must not be negative" -}}
{{- end -}}
{{- if lt (int $v.shutdownTimeoutSeconds) 1 -}}
{{- fail "shutdownTimeoutSeconds must be at least 1" -}}
{{- end -}}
{{- $managed := include "herald.managedSettings" . | fromYaml -}}
{{- range $name, $value := $v.config -}}
{{- if hasKey $managed $name -}}
{{- fail (printf "config.%s is managed by the chart: %s" $name (get $managed $name)) -}}
{{- end -}}
{{- if not (regexMatch "^[a-z][a-z0-9-]*$" $name) -}}
{{- fail (printf "config.%s: settings are named as herald serve's flags, without the dashes (cors-origins)" $name) -}}
{{- end -}}
{{- if kindIs "map" $value -}}
{{- fail (printf "config.%s must be a plain value" $name) -}}
{{- end -}}
{{- if regexMatch "://[^/@]*:[^/@]*@" (toString $value) -}}
{{- fail (printf "config.%s holds a URL with a password: put credentials in a Secret" $name) -}}
{{- end -}}
{{- end -}}
{{- range $v.extraEnv -}}
{{- if hasKey . "value" -}}
{{- if regexMatch "(?i)(secret|password|passwd|token|key|credential|dsn|store|bus)" .name -}}
{{- fail (printf "extraEnv %s: a variable named like a secret takes valueFrom (a secretKeyRef), not a value" .name) -}}
{{- end -}}
{{- if regexMatch "://[^/@]*:[^/@]*@" (toString .value) -}}
{{- fail (printf "extraEnv %s holds a URL with a password: use valueFrom with a secretKeyRef" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* herald.podTemplate is the pod of either shape. */}}
{{- define "herald.podTemplate" -}}
{{- $v := .Values -}}
metadata:
  labels:
    {{- include "herald.selectorLabels" . | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    herald.heraldhq.dev/shape: {{ $v.mode }}
    {{- if eq $v.mode "cluster" }}
    herald.heraldhq.dev/bus: {{ $v.cluster.bus.kind }}
    {{- end }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "herald.serviceAccountName" . }}
  # Herald never calls the Kubernetes API.
  automountServiceAccountToken: false
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ include "herald.gracePeriod" . }}
  containers:
    - name: herald
      image: "{{ $v.image.repository }}:{{ $v.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args: [serve]
      ports:
        - name: http
          containerPort: 8080
          protocol: TCP
        - name: metrics
          containerPort: {{ $v.metrics.port }}
          protocol: TCP
      env:
        - name: HERALD_ADDR
          value: ":8080"
        - name: HERALD_METRICS_ADDR
          value: ":{{ $v.metrics.port }}"
        - name: HERALD_LOG_FORMAT
          value: json
        - name: HERALD_DRAIN_WINDOW
          value: "{{ $v.drainWindowSeconds }}s"
        - name: HERALD_SHUTDOWN_TIMEOUT
          value: "{{ $v.shutdownTimeoutSeconds }}s"
        {{- if eq $v.mode "single" }}
        - name: HERALD_STORE
          value: sqlite:/data/herald.db
        - name: HERALD_SQLITE_SYNC
          value: {{ $v.persistence.sqliteSync }}
        {{- else }}
        - name: HERALD_STORE
          valueFrom:
            secretKeyRef:
              name: {{ $v.cluster.store.existingSecret }}
              key: {{ $v.cluster.store.key }}
        - name: HERALD_BUS
          valueFrom:
            secretKeyRef:
              name: {{ $v.cluster.bus.existingSecret }}
              key: {{ $v.cluster.bus.key }}
        - name: HERALD_BUS_CHANNEL
          value: {{ $v.cluster.bus.channel | quote }}
        {{- end }}
        {{- if $v.auth.jwtSecret.existingSecret }}
        - name: HERALD_JWT_SECRET_FILE
          value: /etc/herald/jwt-secret/{{ $v.auth.jwtSecret.key }}
        {{- end }}
        {{- if $v.auth.publisherKeys.existingSecret }}
        - name: HERALD_PUBLISHER_KEY_FILE
          value: /etc/herald/publisher-keys/{{ $v.auth.publisherKeys.key }}
        {{- end }}
        {{- if $v.auth.jwtPublicKeys.existingConfigMap }}
        - name: HERALD_JWT_PUBLIC_KEYS
          value: /etc/herald/jwt-public-keys/{{ $v.auth.jwtPublicKeys.key }}
        {{- end }}
        {{- with $v.auth.jwksUrl }}
        - name: HERALD_JWKS_URL
          value: {{ . | quote }}
        {{- end }}
        {{- range $name, $value := $v.config }}
        - name: HERALD_{{ $name | upper | replace "-" "_" }}
          value: {{ $value | toString | quote }}
        {{- end }}
        # SQLite's temporary files, on the writable emptyDir: the root filesystem is read-only.
        - name: TMPDIR
          value: /tmp
        {{- with $v.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      # Probes ask the metrics listener, which answers even when the API's port is saturated with
      # streams: a busy node must not be restarted.
      startupProbe:
        httpGet:
          path: /healthz
          port: metrics
        periodSeconds: 2
        # Up to two minutes to open the store and apply migrations.
        failureThreshold: 60
      livenessProbe:
        httpGet:
          path: /healthz
          port: metrics
        periodSeconds: 10
        timeoutSeconds: 3
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: /readyz
          port: metrics
        periodSeconds: 5
        # /readyz pings the store and the bus with a 2 s timeout.
        timeoutSeconds: 3
        failureThreshold: 2
      {{- if gt (int $v.preStopSleepSeconds) 0 }}
      lifecycle:
        # Let the endpoints and the ingress stop sending new clients before the drain starts.
        preStop:
          sleep:
            seconds: {{ $v.preStopSleepSeconds }}
      {{- end }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if eq $v.mode "single" }}
        - name: data
          mountPath: /data
        {{- end }}
        {{- if $v.auth.jwtSecret.existingSecret }}
        - name: jwt-secret
          mountPath: /etc/herald/jwt-secret
          readOnly: true
        {{- end }}
        {{- if $v.auth.publisherKeys.existingSecret }}
        - name: publisher-keys
          mountPath: /etc/herald/publisher-keys
          readOnly: true
        {{- end }}
        {{- if $v.auth.jwtPublicKeys.existingConfigMap }}
        - name: jwt-public-keys
          mountPath: /etc/herald/jwt-public-keys
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 256Mi
    {{- if $v.auth.jwtSecret.existingSecret }}
    - name: jwt-secret
      secret:
        secretName: {{ $v.auth.jwtSecret.existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ $v.auth.jwtSecret.key }}
            path: {{ $v.auth.jwtSecret.key }}
    {{- end }}
    {{- if $v.auth.publisherKeys.existingSecret }}
    - name: publisher-keys
      secret:
        secretName: {{ $v.auth.publisherKeys.existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ $v.auth.publisherKeys.key }}
            path: {{ $v.auth.publisherKeys.key }}
    {{- end }}
    {{- if $v.auth.jwtPublicKeys.existingConfigMap }}
    - name: jwt-public-keys
      configMap:
        name: {{ $v.auth.jwtPublicKeys.existingConfigMap }}
        items:
          - key: {{ $v.auth.jwtPublicKeys.key }}
            path: {{ $v.auth.jwtPublicKeys.key }}
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $v.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml $v.topologySpreadConstraints | nindent 4 }}
  {{- else if eq $v.mode "cluster" }}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "herald.selectorLabels" . | nindent 10 }}
  {{- end }}
{{- end -}}
