# Turns the inputs into the names the chart will use and into the chart's values. No providers
# and no resources: only locals, so this runs (and is tested) anywhere `terraform` does.

locals {
  chart_name = "gateway"

  # The chart's "gateway.fullname": the release name when it already contains the chart's name,
  # else "<release>-gateway" (truncated to 48 characters, as the chart does).
  fullname = trimsuffix(substr(
    strcontains(var.release_name, local.chart_name) ? var.release_name : "${var.release_name}-${local.chart_name}",
    0, 48
  ), "-")

  credentials_secret_name = var.credentials_secret_name != "" ? var.credentials_secret_name : "${local.fullname}-s3-credentials"
  # The chart's default: no key held with its MinIO, static keys with an external S3.
  credentials_mode = var.credentials != "" ? var.credentials : (var.minio.enabled ? "sts-certificate" : "static")
  # The root module's Secret: MinIO's root credentials (MinIO and its setup Job only), or the
  # keys of an external S3 with static credentials.
  stores_keys = var.minio.enabled || local.credentials_mode == "static"
  client_tls_secret_name = {
    helm            = "${local.fullname}-client-tls"
    certManager     = "${local.fullname}-client-tls"
    existingSecrets = var.tls_existing_secrets.client
    none            = ""
  }[var.tls_mode]
  server_tls_secret_name = !var.minio.enabled ? "" : (
    var.tls_mode == "existingSecrets" ? var.tls_existing_secrets.server : "${local.fullname}-minio-tls"
  )

  service_host = "${local.fullname}.${var.namespace}.svc.${var.cluster_domain}"
  minio_host   = "${local.fullname}-minio.${var.namespace}.svc.${var.cluster_domain}"
  endpoint     = var.minio.enabled ? "https://${local.minio_host}:9000" : var.external_s3.endpoint
  service_port = 80
  admin_port   = 9090
  seed_key     = "gateway.gif"
  gif_url      = "http://${local.service_host}:${local.service_port}/${local.seed_key}"
  metrics_url  = "http://${local.fullname}-admin.${var.namespace}.svc.${var.cluster_domain}:${local.admin_port}/metrics"
  ingress_url  = var.ingress.enabled ? "${var.ingress.tls_secret_name != "" ? "https" : "http"}://${var.ingress.host}/${local.seed_key}" : null


  # The chart's values (helm/gateway/values.yaml); the root module passes yamlencode(values).
  values = {
    clusterDomain = var.cluster_domain
    image = {
      repository = var.image.repository
      tag        = var.image.tag
      pullPolicy = var.image.pull_policy
    }
    replicaCount = var.replicas
    s3 = {
      bucket         = var.bucket
      credentials    = local.credentials_mode
      existingSecret = local.stores_keys ? local.credentials_secret_name : ""
    }
    externalS3 = {
      endpoint = var.minio.enabled ? "" : var.external_s3.endpoint
      port     = var.external_s3.port
    }
    backendTLS = {
      mode = var.tls_mode
      existingSecrets = {
        client     = var.tls_existing_secrets.client
        seedClient = var.tls_existing_secrets.seed_client
        server     = var.tls_existing_secrets.server
      }
    }
    gateway = {
      cache = { maxBytes = var.cache_max_bytes }
      diskCache = {
        enabled       = var.disk_cache.enabled
        maxBytes      = var.disk_cache.max_bytes
        sizeLimit     = var.disk_cache.size_limit
        existingClaim = var.disk_cache.existing_claim
      }
      compression = var.compression
      # The chart's camelCase fields; a field left out is not written (the chart's defaults).
      sites = [for s in var.sites : { for k, v in {
        name              = s.name
        hosts             = s.hosts
        bucket            = s.bucket
        prefix            = s.prefix
        index             = s.index
        errorDocument     = s.error_document
        spaFallback       = s.spa_fallback
        cacheControl      = s.cache_control
        errorCacheControl = s.error_cache_control
        listDirectories   = s.list_directories
        corsOrigins       = s.cors_origins
      } : k => v if v != null }]
      defaultSite = var.default_site
    }
    # Memory's request and limit are left to the chart, which derives them from the cache
    # settings (gateway.cache.maxBytes + fill budget + 64Mi).
    resources = {
      requests = { cpu = "100m" }
    }
    minio = {
      enabled = var.minio.enabled
      persistence = {
        size         = var.minio.storage_size
        storageClass = var.minio.storage_class
      }
    }
    ingress = {
      enabled   = var.ingress.enabled
      className = var.ingress.class_name
      hosts = var.ingress.enabled ? [{
        host  = var.ingress.host
        paths = [{ path = "/", pathType = "Prefix" }]
      }] : []
      tls = var.ingress.enabled && var.ingress.tls_secret_name != "" ? [{
        secretName = var.ingress.tls_secret_name
        hosts      = [var.ingress.host]
      }] : []
    }
    autoscaling = {
      enabled                           = var.autoscaling.enabled
      minReplicas                       = var.autoscaling.min_replicas
      maxReplicas                       = var.autoscaling.max_replicas
      targetCPUUtilizationPercentage    = var.autoscaling.target_cpu
      targetMemoryUtilizationPercentage = var.autoscaling.target_memory
    }
    networkPolicy = {
      enabled                  = var.network_policy.enabled
      ingressNamespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = var.network_policy.ingress_namespace } }
      metricsNamespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = var.network_policy.monitoring_namespace } }
    }
    metrics = {
      serviceMonitor = {
        enabled = var.metrics.service_monitor
        labels  = var.metrics.service_monitor_labels
      }
    }
    dashboard = {
      enabled = var.metrics.dashboard
    }
  }
}
