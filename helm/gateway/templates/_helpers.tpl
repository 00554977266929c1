{{/*
Names, labels, and the pieces the gateway Deployment and the seed Job share (backend flags,
volumes), so that both always reach the same bucket with the same TLS material.
*/}}

{{- define "gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name, truncated so that "-minio-headless" still fits in 63 characters. */}}
{{- define "gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gateway.labels" -}}
helm.sh/chart: {{ include "gateway.chart" . }}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gateway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference, called with (dict "image" <an image block> "root" $ "tag" <default tag>):
`[registry/]repository` with `@digest` when one is given (it pins the image whatever the tag),
else `:tag`. The registry is global.imageRegistry when an umbrella chart (or an air-gapped
install) sets it, else the image's own `registry`: one value moves every image of the chart to
a mirror.
*/}}
{{- define "gateway.imageRef" -}}
{{- $registry := default .image.registry ((.root.Values.global).imageRegistry) }}
{{- $repository := ternary (printf "%s/%s" $registry .image.repository) .image.repository (not (empty $registry)) }}
{{- if .image.digest }}
{{- printf "%s@%s" $repository .image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .tag .image.tag) }}
{{- end }}
{{- end }}

{{/* The gateway image (default tag: the chart's appVersion). */}}
{{- define "gateway.image" -}}
{{- include "gateway.imageRef" (dict "image" .Values.image "root" . "tag" .Chart.AppVersion) }}
{{- end }}

{{/*
imagePullSecrets of every pod: imagePullSecrets and global.imagePullSecrets (names or
{name: ...} items), without repeats.
*/}}
{{- define "gateway.imagePullSecrets" -}}
{{- $names := list }}
{{- range concat (.Values.imagePullSecrets | default list) ((.Values.global).imagePullSecrets | default list) }}
{{- if kindIs "string" . }}
{{- $names = append $names . }}
{{- else }}
{{- $names = append $names .name }}
{{- end }}
{{- end }}
{{- with $names | compact | uniq }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The backend's mTLS settings (`backendTLS`), as YAML. `tls` is their old name, which read like
the ingress's TLS: values given under it still apply, over `backendTLS`, and NOTES.txt asks
for the new name. The schema checks whichever of the two the values use.
*/}}
{{- define "gateway.backendTLS" -}}
{{- toYaml (mustMergeOverwrite (deepCopy .Values.backendTLS) (deepCopy (.Values.tls | default dict))) }}
{{- end }}

{{/*
Fails the render when `stableRender` is on and a value would be generated (the generated ones
differ on every `helm template`, which GitOps tools run without a cluster to read them back).
*/}}
{{- define "gateway.checkStableRender" -}}
{{- if .Values.stableRender }}
{{- $btls := include "gateway.backendTLS" . | fromYaml }}
{{- if and .Values.minio.enabled (not .Values.s3.existingSecret) }}
{{- fail "stableRender: MinIO's root credentials would be generated on every render: set s3.existingSecret (a Secret with access-key and secret-key)" }}
{{- end }}
{{- if and .Values.gateway.purge.enabled (not .Values.gateway.purge.existingSecret) }}
{{- fail "stableRender: the purge token would be generated on every render: set gateway.purge.existingSecret (a Secret with token), or gateway.purge.enabled=false" }}
{{- end }}
{{- if eq $btls.mode "helm" }}
{{- fail "stableRender: backendTLS.mode=helm generates certificates on every render: use backendTLS.mode=certManager or existingSecrets" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gateway.minio.fullname" -}}
{{- printf "%s-minio" (include "gateway.fullname" .) }}
{{- end }}

{{/* The names MinIO's server certificate holds: its Service, short to fully qualified. */}}
{{- define "gateway.minio.dnsNames" -}}
{{- $minio := include "gateway.minio.fullname" . -}}
- {{ $minio }}
- {{ $minio }}.{{ .Release.Namespace }}
- {{ $minio }}.{{ .Release.Namespace }}.svc
- {{ include "gateway.minio.host" . }}
{{- end }}

{{/* Host name of the MinIO Service, as in its certificate. */}}
{{- define "gateway.minio.host" -}}
{{- printf "%s.%s.svc.%s" (include "gateway.minio.fullname" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/* The S3 endpoint the gateway and the seed job use. */}}
{{- define "gateway.endpoint" -}}
{{- if .Values.minio.enabled }}
{{- printf "https://%s:9000" (include "gateway.minio.host" .) }}
{{- else }}
{{- .Values.externalS3.endpoint | default (printf "https://s3.%s.amazonaws.com" .Values.s3.region) }}
{{- end }}
{{- end }}

{{/*
Where the gateway and the seed job get S3 credentials: s3.credentials, or when it is empty,
`sts-certificate` with the chart's MinIO (no key held) and `static` with an external S3.
*/}}
{{- define "gateway.credentialsMode" -}}
{{- .Values.s3.credentials | default (ternary "sts-certificate" "static" .Values.minio.enabled) }}
{{- end }}

{{/*
The MinIO policies of the two identities, named as the common names of their client
certificates (AssumeRoleWithCertificate maps a common name to the policy of that name).
*/}}
{{- define "gateway.readPolicy" -}}
{{- printf "%s-read" (include "gateway.fullname" .) }}
{{- end }}

{{- define "gateway.seedPolicy" -}}
{{- printf "%s-seed" (include "gateway.fullname" .) }}
{{- end }}

{{/*
The two policy documents (least privilege), as JSON: the gateway reads objects under each
served bucket's prefix, lists the bucket (honest 404s) and follows its change events; the seed
job reads and writes its one object and may create its bucket.
*/}}
{{- define "gateway.readPolicyDocument" -}}
{{- /* Each site's bucket and prefix (a site without them has s3.bucket and s3.prefix). */}}
{{- $sites := .Values.gateway.sites | default (list dict) }}
{{- $objects := list }}
{{- $bucketArns := list }}
{{- range $sites }}
{{- $bucket := .bucket | default $.Values.s3.bucket }}
{{- $prefix := ternary .prefix $.Values.s3.prefix (hasKey . "prefix") | trimPrefix "/" }}
{{- /* As the gateway reads it: a prefix ends in '/'. */}}
{{- if and $prefix (not (hasSuffix "/" $prefix)) }}
{{- $prefix = printf "%s/" $prefix }}
{{- end }}
{{- $objects = append $objects (printf "arn:aws:s3:::%s/%s*" $bucket $prefix) }}
{{- $bucketArns = append $bucketArns (printf "arn:aws:s3:::%s" $bucket) }}
{{- end }}
{{- $objects = $objects | uniq | sortAlpha }}
{{- $bucketArns = $bucketArns | uniq | sortAlpha }}
{{- $listing := list "s3:ListBucket" }}
{{- if ne .Values.gateway.bucketEvents "off" }}
{{- $listing = append $listing "s3:ListenBucketNotification" }}
{{- end }}
{{- dict "Version" "2012-10-17" "Statement" (list
  (dict "Effect" "Allow" "Action" (list "s3:GetObject") "Resource" $objects)
  (dict "Effect" "Allow" "Action" $listing "Resource" $bucketArns)) | toPrettyJson }}
{{- end }}

{{- define "gateway.seedPolicyDocument" -}}
{{- $bucket := printf "arn:aws:s3:::%s" .Values.s3.bucket }}
{{- dict "Version" "2012-10-17" "Statement" (list
  (dict "Effect" "Allow" "Action" (list "s3:GetObject" "s3:PutObject") "Resource" (list (printf "%s/%s%s" $bucket .Values.s3.prefix .Values.seed.key)))
  (dict "Effect" "Allow" "Action" (list "s3:CreateBucket" "s3:ListBucket") "Resource" (list $bucket))) | toPrettyJson }}
{{- end }}

{{/* Secret with `access-key` and `secret-key`. */}}
{{- define "gateway.credentialsSecret" -}}
{{- if .Values.s3.existingSecret }}
{{- .Values.s3.existingSecret }}
{{- else if .Values.minio.enabled }}
{{- printf "%s-credentials" (include "gateway.fullname" .) }}
{{- else }}
{{- fail "s3.existingSecret is required when minio.enabled=false: a Secret with the keys access-key and secret-key" }}
{{- end }}
{{- end }}

{{/* Secret with the gateway's client certificate (tls.crt, tls.key, ca.crt); empty in mode none. */}}
{{- define "gateway.clientTlsSecret" -}}
{{- $btls := include "gateway.backendTLS" . | fromYaml }}
{{- if eq $btls.mode "existingSecrets" }}
{{- required "backendTLS.existingSecrets.client is required when backendTLS.mode=existingSecrets" $btls.existingSecrets.client }}
{{- else if ne $btls.mode "none" }}
{{- printf "%s-client-tls" (include "gateway.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Secret with the seed job's client certificate (its own identity, common name
gateway.seedPolicy); with existing Secrets and no seed Secret given, the gateway's.
*/}}
{{- define "gateway.seedTlsSecret" -}}
{{- $btls := include "gateway.backendTLS" . | fromYaml }}
{{- if eq $btls.mode "existingSecrets" }}
{{- $btls.existingSecrets.seedClient | default (include "gateway.clientTlsSecret" .) }}
{{- else if ne $btls.mode "none" }}
{{- printf "%s-seed-tls" (include "gateway.fullname" .) }}
{{- end }}
{{- end }}

{{/* Secret with MinIO's server certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "gateway.serverTlsSecret" -}}
{{- $btls := include "gateway.backendTLS" . | fromYaml }}
{{- if eq $btls.mode "existingSecrets" }}
{{- required "backendTLS.existingSecrets.server is required when backendTLS.mode=existingSecrets and minio.enabled=true" $btls.existingSecrets.server }}
{{- else }}
{{- printf "%s-minio-tls" (include "gateway.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The volume source of a certificate Secret, called with (dict "root" $ "secret" <name> "paths"
(dict "ca" <path> "cert" <path> "key" <path>)), a path left out is not mounted. With
backendTLS.mode=existingSecrets the Secret's keys are backendTLS.existingSecrets.keys, and the CA may come
from backendTLS.existingSecrets.caSecret (a projected volume): a `kubectl create secret tls` Secret
has no ca.crt, and a missing key would hold the pod in ContainerCreating.
*/}}
{{- define "gateway.tlsSecretVolume" -}}
{{- $ := .root }}
{{- $btls := include "gateway.backendTLS" $ | fromYaml }}
{{- $paths := .paths }}
{{- $existing := eq $btls.mode "existingSecrets" }}
{{- $keys := dict "ca" "ca.crt" "cert" "tls.crt" "key" "tls.key" }}
{{- if $existing }}{{ $keys = merge (deepCopy ($btls.existingSecrets.keys | default dict)) $keys }}{{ end }}
{{- $caSecret := ternary ($btls.existingSecrets.caSecret | default .secret) .secret $existing }}
{{- if eq $caSecret .secret }}
secret:
  secretName: {{ .secret }}
  defaultMode: 0440
  items:
    {{- range $kind := list "ca" "cert" "key" }}
    {{- with index $paths $kind }}
    - key: {{ index $keys $kind }}
      path: {{ . }}
    {{- end }}
    {{- end }}
{{- else }}
projected:
  defaultMode: 0440
  sources:
    - secret:
        name: {{ $caSecret }}
        items:
          - key: {{ $keys.ca }}
            path: {{ .paths.ca }}
    {{- if or .paths.cert .paths.key }}
    - secret:
        name: {{ .secret }}
        items:
          {{- range $kind := list "cert" "key" }}
          {{- with index $paths $kind }}
          - key: {{ index $keys $kind }}
            path: {{ . }}
          {{- end }}
          {{- end }}
    {{- end }}
{{- end }}
{{- end }}

{{/* Flags that reach the bucket: shared by `gateway serve` and `gateway seed`. */}}
{{- define "gateway.backendArgs" -}}
- --endpoint
- {{ include "gateway.endpoint" . | quote }}
- --bucket
- {{ .Values.s3.bucket | quote }}
- --region
- {{ .Values.s3.region | quote }}
- --path-style
- {{ .Values.s3.pathStyle | quote }}
- --credentials
- {{ include "gateway.credentialsMode" . | quote }}
{{- if eq (include "gateway.credentialsMode" .) "static" }}
- --access-key-file
- /etc/gateway/credentials/access-key
- --secret-key-file
- /etc/gateway/credentials/secret-key
{{- end }}
{{- if include "gateway.clientTlsSecret" . }}
- --ca-cert
- /etc/gateway/tls/ca.crt
- --client-cert
- /etc/gateway/tls/tls.crt
- --client-key
- /etc/gateway/tls/tls.key
{{- end }}
- --sts-duration
- {{ .Values.gateway.backend.stsDuration | quote }}
- --backend-connect-timeout
- {{ .Values.gateway.backend.connectTimeout | quote }}
- --backend-timeout
- {{ .Values.gateway.backend.timeout | quote }}
- --log-format
- {{ .Values.gateway.logFormat | quote }}
- --log-level
- {{ .Values.gateway.logLevel | quote }}
{{- end }}

{{/*
The gateway's sites file (TOML) from gateway.sites: camelCase values become the file's
snake_case fields; strings are quoted (Go's quoting, a valid TOML basic string).
*/}}
{{- define "gateway.sitesToml" -}}
{{- with .Values.gateway.defaultSite }}
{{- $names := list }}
{{- range $.Values.gateway.sites }}{{ $names = append $names .name }}{{ end }}
{{- if not (has . $names) }}
{{- fail (printf "gateway.defaultSite %q names no site of gateway.sites (%s)" . (join ", " $names)) }}
{{- end }}
default_site = {{ . | quote }}
{{- end }}
{{- range $si, $s := .Values.gateway.sites }}
{{- with $s }}

[[sites]]
name = {{ .name | quote }}
hosts = [{{ range $i, $h := .hosts }}{{ if $i }}, {{ end }}{{ $h | quote }}{{ end }}]
{{- $site := . }}
{{- range $key := list "bucket" "prefix" "index" "errorDocument" "spaFallback" "cacheControl" "errorCacheControl" "siteRules" }}
{{- if hasKey $site $key }}
{{ $key | snakecase }} = {{ index $site $key | quote }}
{{- end }}
{{- end }}
{{- if hasKey . "listDirectories" }}
list_directories = {{ .listDirectories }}
{{- end }}
{{- if hasKey . "corsOrigins" }}
cors_origins = [{{ range $i, $o := .corsOrigins }}{{ if $i }}, {{ end }}{{ $o | quote }}{{ end }}]
{{- end }}
{{- range $i, $p := .protect }}

[[sites.protect]]
for = {{ $p.for | quote }}
htpasswd = {{ printf "/etc/gateway/protect/site%d-%d/htpasswd" $si $i | quote }}
{{- with $p.realm }}
realm = {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret holding the purge token; empty when purging is off. */}}
{{- define "gateway.adminTokenSecret" -}}
{{- if .Values.gateway.purge.enabled }}
{{- .Values.gateway.purge.existingSecret | default (printf "%s-admin-token" (include "gateway.fullname" .)) }}
{{- end }}
{{- end }}

{{/* The purge token's file, mounted from its Secret. */}}
{{- define "gateway.adminTokenFile" -}}
/etc/gateway/admin-token/token
{{- end }}

{{/* The purge token volume and its mount (for the gateway and the seed job). */}}
{{- define "gateway.adminTokenVolumes" -}}
{{- with include "gateway.adminTokenSecret" . }}
- name: admin-token
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: token
        path: token
{{- end }}
{{- end }}

{{- define "gateway.adminTokenVolumeMounts" -}}
{{- if include "gateway.adminTokenSecret" . }}
- name: admin-token
  mountPath: /etc/gateway/admin-token
  readOnly: true
{{- end }}
{{- end }}

{{/*
The purge token generated when no Secret is given, reused from the cluster on upgrades.
*/}}
{{- define "gateway.generatedAdminToken" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "gateway.adminTokenSecret" .) }}
{{- if and $existing $existing.data }}
{{- index $existing.data "token" | b64dec }}
{{- else }}
{{- randAlphaNum 40 }}
{{- end }}
{{- end }}

{{/*
Volumes with the credentials and the client certificate, mounted read-only; called with
(dict "top" $ "role" "gateway"|"seed"): each role mounts its own certificate.
*/}}
{{- define "gateway.backendVolumes" -}}
{{- $ := .top }}
{{- if eq (include "gateway.credentialsMode" $) "static" }}
- name: credentials
  secret:
    secretName: {{ include "gateway.credentialsSecret" $ }}
    defaultMode: 0440
    items:
      - key: access-key
        path: access-key
      - key: secret-key
        path: secret-key
{{- end }}
{{- with include (ternary "gateway.seedTlsSecret" "gateway.clientTlsSecret" (eq .role "seed")) $ }}
- name: tls
  {{- include "gateway.tlsSecretVolume" (dict "root" $ "secret" . "paths" (dict "ca" "ca.crt" "cert" "tls.crt" "key" "tls.key")) | trim | nindent 2 }}
{{- end }}
{{- end }}

{{- define "gateway.backendVolumeMounts" -}}
{{- if eq (include "gateway.credentialsMode" .) "static" }}
- name: credentials
  mountPath: /etc/gateway/credentials
  readOnly: true
{{- end }}
{{- if include "gateway.clientTlsSecret" . }}
- name: tls
  mountPath: /etc/gateway/tls
  readOnly: true
{{- end }}
{{- end }}

{{/*
Generated mTLS material for backendTLS.mode=helm: a private CA, MinIO's server certificate (its
Service names) and two client certificates, the gateway's and the seed job's, whose common
names are their MinIO policies. The Secrets already in the cluster are reused, so upgrades keep
the same certificates; when one is missing (an upgrade from a chart without the seed's), all
are made again, since the CA's key is not kept. So are they when their recorded expiry
(annotation `gateway/not-after`, 825 days after they were made) is within
backendTLS.helm.renewBeforeDays: `helm upgrade` renews them. Returns YAML: {notAfter, ca, serverCert,
serverKey, clientCert, clientKey, seedCert, seedKey}.
*/}}
{{- define "gateway.generatedTls" -}}
{{- $btls := include "gateway.backendTLS" . | fromYaml }}
{{- $fullname := include "gateway.fullname" . }}
{{- $client := lookup "v1" "Secret" .Release.Namespace (printf "%s-client-tls" $fullname) }}
{{- $server := lookup "v1" "Secret" .Release.Namespace (printf "%s-minio-tls" $fullname) }}
{{- $seed := lookup "v1" "Secret" .Release.Namespace (printf "%s-seed-tls" $fullname) }}
{{- $notAfter := "" }}
{{- if $client }}
{{- $notAfter = index ($client.metadata.annotations | default dict) "gateway/not-after" | default "" }}
{{- end }}
{{- $due := include "gateway.tlsRenewDue" (dict "notAfter" $notAfter "renewBeforeDays" (int $btls.helm.renewBeforeDays)) }}
{{- if and $client $server $seed $client.data $server.data $seed.data (not $due) }}
notAfter: {{ $notAfter | quote }}
ca: {{ index $client.data "ca.crt" | b64dec | quote }}
serverCert: {{ index $server.data "tls.crt" | b64dec | quote }}
serverKey: {{ index $server.data "tls.key" | b64dec | quote }}
clientCert: {{ index $client.data "tls.crt" | b64dec | quote }}
clientKey: {{ index $client.data "tls.key" | b64dec | quote }}
seedCert: {{ index $seed.data "tls.crt" | b64dec | quote }}
seedKey: {{ index $seed.data "tls.key" | b64dec | quote }}
{{- else }}
{{- $names := include "gateway.minio.dnsNames" . | fromYamlArray }}
{{- $ca := genCA (printf "%s mTLS CA" $fullname) 3650 }}
{{- $serverCert := genSignedCert (include "gateway.minio.fullname" .) nil $names 825 $ca }}
{{- $clientCert := genSignedCert (include "gateway.readPolicy" .) nil nil 825 $ca }}
{{- $seedCert := genSignedCert (include "gateway.seedPolicy" .) nil nil 825 $ca }}
notAfter: {{ now | dateModify "+19800h" | date "2006-01-02T15:04:05Z07:00" | quote }}
ca: {{ $ca.Cert | quote }}
serverCert: {{ $serverCert.Cert | quote }}
serverKey: {{ $serverCert.Key | quote }}
clientCert: {{ $clientCert.Cert | quote }}
clientKey: {{ $clientCert.Key | quote }}
seedCert: {{ $seedCert.Cert | quote }}
seedKey: {{ $seedCert.Key | quote }}
{{- end }}
{{- end }}

{{/*
Whether generated certificates are due for renewal: "true" when their recorded expiry
(`notAfter`, RFC 3339; empty: unknown, as for Secrets of older chart versions) is within
`renewBeforeDays`, else empty. Pure, so the tests can call it with any date.
*/}}
{{- define "gateway.tlsRenewDue" -}}
{{- $notAfter := toDate "2006-01-02T15:04:05Z07:00" (.notAfter | default "1970-01-01T00:00:00Z") }}
{{- $deadline := now | dateModify (printf "+%dh" (mul .renewBeforeDays 24)) }}
{{- if lt (unixEpoch $notAfter | atoi) (unixEpoch $deadline | atoi) }}true{{- end }}
{{- end }}

{{/*
Credentials generated for the chart's MinIO, reused from the cluster on upgrades.
Returns YAML: {accessKey, secretKey}.
*/}}
{{- define "gateway.generatedCredentials" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "gateway.credentialsSecret" .) }}
{{- if and $existing $existing.data }}
accessKey: {{ index $existing.data "access-key" | b64dec | quote }}
secretKey: {{ index $existing.data "secret-key" | b64dec | quote }}
{{- else }}
accessKey: {{ printf "gateway-%s" (randAlphaNum 12 | lower) | quote }}
secretKey: {{ randAlphaNum 40 | quote }}
{{- end }}
{{- end }}

{{/* Arguments of the gateway container: `gateway serve` on gateway.listenAddress with the backend flags. */}}
{{- define "gateway.serveArgs" -}}
- serve
- --listen
- {{ printf "%s:%d" .Values.gateway.listenAddress (int .Values.gateway.port) | quote }}
- --admin-listen
- {{ printf "%s:%d" .Values.gateway.listenAddress (int .Values.gateway.adminPort) | quote }}
{{ include "gateway.backendArgs" . }}
{{- with .Values.s3.prefix }}
- --prefix
- {{ . | quote }}
{{- end }}
- --index
- {{ .Values.gateway.index | quote }}
{{- with .Values.gateway.errorDocument }}
- --error-document
- {{ . | quote }}
{{- end }}
{{- with .Values.gateway.spaFallback }}
- --spa-fallback
- {{ . | quote }}
{{- end }}
{{- if .Values.gateway.listDirectories }}
- --list-directories
{{- end }}
{{- with .Values.gateway.corsOrigins }}
- --cors-origin
- {{ join "," . | quote }}
{{- end }}
{{- range .Values.gateway.headerRules }}
- --header-rule
- {{ . | quote }}
{{- end }}
{{- range .Values.gateway.redirects }}
- --redirect
- {{ . | quote }}
{{- end }}
{{- range $i, $p := .Values.gateway.protect }}
- --protect
- {{ printf "%s /etc/gateway/protect/%d/htpasswd %s" $p.for $i ($p.realm | default "") | trim | quote }}
{{- end }}
- --cache-control
- {{ .Values.gateway.cacheControl | quote }}
- --error-cache-control
- {{ .Values.gateway.errorCacheControl | quote }}
- --missing-object-status
- {{ .Values.gateway.missingObjectStatus | quote }}
- --compression
- {{ .Values.gateway.compression | join "," | default "off" | quote }}
- --compression-min-bytes
- {{ include "gateway.size" .Values.gateway.compressionMinBytes | quote }}
{{- if .Values.gateway.compressionStatic }}
- --compression-static
{{- end }}
- --bucket-events
- {{ .Values.gateway.bucketEvents | quote }}
- --site-rules
- {{ .Values.gateway.siteRules | quote }}
{{- if .Values.gateway.sites }}
- --sites
- /etc/gateway/sites/sites.toml
{{- end }}
{{- if include "gateway.adminTokenSecret" . }}
- --admin-token-file
- {{ include "gateway.adminTokenFile" . | quote }}
{{- end }}
- --cache-max-bytes
- {{ include "gateway.size" .Values.gateway.cache.maxBytes | quote }}
- --cache-max-object-bytes
- {{ include "gateway.size" .Values.gateway.cache.maxObjectBytes | quote }}
{{- if .Values.gateway.diskCache.enabled }}
- --disk-cache-dir
- /var/cache/gateway
- --disk-cache-max-bytes
- {{ include "gateway.size" .Values.gateway.diskCache.maxBytes | quote }}
- --disk-cache-slice-bytes
- {{ include "gateway.size" .Values.gateway.diskCache.sliceBytes | quote }}
{{- end }}
- --cache-ttl
- {{ .Values.gateway.cache.ttl | quote }}
- --cache-stale-if-error
- {{ .Values.gateway.cache.staleIfError | quote }}
- --cache-stale-while-revalidate
- {{ .Values.gateway.cache.staleWhileRevalidate | quote }}
- --cache-negative-ttl
- {{ .Values.gateway.cache.negativeTtl | quote }}
- --cache-negative-max-entries
- {{ int .Values.gateway.cache.negativeMaxEntries | quote }}
{{- with .Values.gateway.cache.fillBudget }}
- --cache-fill-budget
- {{ include "gateway.size" . | quote }}
{{- end }}
- --cache-honor-no-cache
- {{ .Values.gateway.cache.honorNoCache | quote }}
- --max-connections
- {{ int .Values.gateway.connections.max | quote }}
- --http2-max-streams
- {{ int .Values.gateway.connections.http2MaxStreams | quote }}
- --header-read-timeout
- {{ .Values.gateway.connections.headerReadTimeout | quote }}
- --idle-timeout
- {{ .Values.gateway.connections.idleTimeout | quote }}
- --send-timeout
- {{ .Values.gateway.connections.sendTimeout | quote }}
- --http2-keepalive-interval
- {{ .Values.gateway.connections.http2KeepaliveInterval | quote }}
- --backend-probe-interval
- {{ .Values.gateway.backend.probeInterval | quote }}
- --circuit-breaker-failures
- {{ int .Values.gateway.backend.circuitBreakerFailures | quote }}
- --circuit-breaker-open
- {{ .Values.gateway.backend.circuitBreakerOpen | quote }}
- --backend-max-concurrency
- {{ int .Values.gateway.backend.maxConcurrency | quote }}
- --backend-connection-max-age
- {{ .Values.gateway.backend.connectionMaxAge | quote }}
- --tls-reload-interval
- {{ .Values.gateway.tlsReloadInterval | quote }}
- --access-log
- {{ .Values.gateway.accessLog | quote }}
- --shutdown-delay
- {{ printf "%ds" (int .Values.gateway.shutdownDelaySeconds) | quote }}
- --shutdown-grace
- {{ printf "%ds" (int .Values.gateway.shutdownGraceSeconds) | quote }}
{{- range .Values.gateway.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Whether the seed Job runs: `seed.enabled`, or when it is left null, only with the chart's own
MinIO (a production bucket is not written to by default).
*/}}
{{- define "gateway.seedEnabled" -}}
{{- if kindIs "invalid" .Values.seed.enabled -}}
{{- if .Values.minio.enabled }}true{{ end -}}
{{- else if .Values.seed.enabled -}}
true
{{- end -}}
{{- end }}

{{/*
A size value in bytes: an integer, or a number with a unit, as the gateway's flags and
Kubernetes' quantities spell them (`536870912`, `512MiB`, `512Mi`, `1GiB`, `1G`, `0`).
*/}}
{{- define "gateway.bytes" -}}
{{- if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) -}}
{{- int64 . -}}
{{- else -}}
{{- $v := trim (toString .) -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $v -}}
{{- $unit := lower (trim (trimPrefix $num $v)) -}}
{{- $units := dict "" 1 "b" 1 "k" 1000 "kb" 1000 "ki" 1024 "kib" 1024 "m" 1000000 "mb" 1000000 "mi" 1048576 "mib" 1048576 "g" 1000000000 "gb" 1000000000 "gi" 1073741824 "gib" 1073741824 "t" 1000000000000 "tb" 1000000000000 "ti" 1099511627776 "tib" 1099511627776 -}}
{{- if or (not $num) (not (hasKey $units $unit)) -}}
{{- fail (printf "%q is not a size: write bytes (536870912) or a number with a unit (512MiB, 512Mi, 1GiB)" $v) -}}
{{- end -}}
{{- mulf (float64 $num) (index $units $unit) | int64 -}}
{{- end -}}
{{- end }}

{{/* A size value as a flag's argument: strings as written, numbers as bytes. */}}
{{- define "gateway.size" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ include "gateway.bytes" . }}{{ end -}}
{{- end }}

{{/*
The memory the gateway container needs, in MiB, as the gateway computes its own bounds: the
cache (gateway.cache.maxBytes), the fill budget (gateway.cache.fillBudget, by default
max(maxBytes / 4, 2 × maxObjectBytes)) and 64 MiB for the process (measured: see the
README's figures). The disk tier adds none: its slices in flight come from the fill budget and
its index is a few dozen bytes per slice.
*/}}
{{- define "gateway.memoryMiB" -}}
{{- $cache := include "gateway.bytes" .Values.gateway.cache.maxBytes | int64 -}}
{{- $object := include "gateway.bytes" .Values.gateway.cache.maxObjectBytes | int64 -}}
{{- $fill := max (div $cache 4) (mul $object 2) -}}
{{- with .Values.gateway.cache.fillBudget }}{{ $fill = include "gateway.bytes" . | int64 }}{{ end -}}
{{- add (div (add $cache $fill 1048575) 1048576) 64 -}}
{{- end }}

{{/*
The gateway container's resources: memory's request and limit derived from the cache
settings (gateway.memoryMiB) unless set; a limit set below it fails the render.
*/}}
{{- define "gateway.resources" -}}
{{- $resources := deepCopy (.Values.resources | default dict) -}}
{{- $need := include "gateway.memoryMiB" . | int64 -}}
{{- $limits := get $resources "limits" | default dict -}}
{{- $requests := get $resources "requests" | default dict -}}
{{- if hasKey $limits "memory" -}}
{{- $set := div (include "gateway.bytes" $limits.memory | int64) 1048576 -}}
{{- if lt $set $need -}}
{{- fail (printf "resources.limits.memory %v is below the %dMi the cache settings need (gateway.cache.maxBytes + fill budget + 64Mi): raise it, or remove it and the chart sets it" $limits.memory $need) -}}
{{- end -}}
{{- else -}}
{{- $_ := set $limits "memory" (printf "%dMi" $need) -}}
{{- end -}}
{{- if not (hasKey $requests "memory") -}}
{{- $_ := set $requests "memory" (get $limits "memory") -}}
{{- end -}}
{{- $_ := set $resources "limits" $limits -}}
{{- $_ := set $resources "requests" $requests -}}
{{- toYaml $resources -}}
{{- end }}
