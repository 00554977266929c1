# terraform test: the chart values and names produced for typical inputs, and every validation
# rule rejecting what it should. Plans only: this module has no providers and no resources.

variables {
  image = {
    repository = "registry.example.com/gateway"
    tag        = "0.1.0"
  }
}

run "defaults_give_minio_with_chart_generated_tls" {
  command = plan

  assert {
    condition     = output.fullname == "gateway"
    error_message = "a release named gateway keeps its name as the prefix"
  }
  assert {
    condition     = output.values.minio.enabled && output.values.backendTLS.mode == "helm"
    error_message = "MinIO and chart-generated mTLS are the defaults"
  }
  assert {
    condition     = output.s3_endpoint == "https://gateway-minio.gateway.svc.cluster.local:9000"
    error_message = "the endpoint is the MinIO Service named in its certificate: ${output.s3_endpoint}"
  }
  assert {
    condition     = output.values.s3.existingSecret == "gateway-s3-credentials" && output.credentials_secret_name == "gateway-s3-credentials"
    error_message = "the chart's MinIO takes its root credentials from the Secret the root module creates"
  }
  assert {
    condition     = output.values.s3.credentials == "sts-certificate" && output.credentials_mode == "sts-certificate"
    error_message = "with the chart's MinIO the gateway holds no key: ${output.values.s3.credentials}"
  }
  assert {
    condition     = output.client_tls_secret_name == "gateway-client-tls" && output.server_tls_secret_name == "gateway-minio-tls"
    error_message = "TLS Secret names follow the chart's"
  }
  assert {
    condition     = output.gif_url == "http://gateway.gateway.svc.cluster.local:80/gateway.gif"
    error_message = "in-cluster GIF URL: ${output.gif_url}"
  }
  assert {
    condition     = output.metrics_url == "http://gateway-admin.gateway.svc.cluster.local:9090/metrics"
    error_message = "metrics URL: ${output.metrics_url}"
  }
  assert {
    condition     = output.ingress_url == null && output.values.ingress.enabled == false && length(output.values.ingress.hosts) == 0
    error_message = "no ingress by default"
  }
  assert {
    condition     = output.values.image == { repository = "registry.example.com/gateway", tag = "0.1.0", pullPolicy = "IfNotPresent" }
    error_message = "image values"
  }
  assert {
    condition     = output.values.resources == { requests = { cpu = "100m" } } && output.values.gateway.cache.maxBytes == "128MiB"
    error_message = "memory is left to the chart, which derives it from the cache"
  }
}

run "release_name_gets_the_chart_suffix" {
  command = plan

  variables {
    release_name = "gifs"
    namespace    = "web"
  }

  assert {
    condition     = output.fullname == "gifs-gateway" && output.s3_endpoint == "https://gifs-gateway-minio.web.svc.cluster.local:9000"
    error_message = "gifs -> gifs-gateway: ${output.fullname}"
  }
}

run "external_s3_with_existing_client_certificate" {
  command = plan

  variables {
    minio                = { enabled = false }
    external_s3          = { endpoint = "https://minio.storage.svc:9000", port = 9000 }
    tls_mode             = "existingSecrets"
    tls_existing_secrets = { client = "corp-client-tls" }
  }

  assert {
    condition     = output.values.minio.enabled == false && output.values.externalS3.endpoint == "https://minio.storage.svc:9000"
    error_message = "external endpoint passed to the chart"
  }
  assert {
    condition     = output.s3_endpoint == "https://minio.storage.svc:9000" && output.server_tls_secret_name == ""
    error_message = "no MinIO server certificate without MinIO"
  }
  assert {
    condition     = output.client_tls_secret_name == "corp-client-tls" && output.values.backendTLS.existingSecrets.client == "corp-client-tls"
    error_message = "the supplied client Secret is used"
  }
}

run "ingress_autoscaling_and_monitoring" {
  command = plan

  variables {
    ingress         = { enabled = true, class_name = "nginx", host = "gifs.example.com", tls_secret_name = "gifs-tls" }
    autoscaling     = { enabled = true, min_replicas = 3, max_replicas = 9, target_memory = 80 }
    metrics         = { service_monitor = true, service_monitor_labels = { release = "kps" }, dashboard = true }
    network_policy  = { enabled = true, ingress_namespace = "ingress" }
    cache_max_bytes = "1GiB"
    disk_cache      = { enabled = true, max_bytes = "4GiB", size_limit = "5Gi" }
    compression     = ["gzip"]
    sites = [
      { name = "www", hosts = ["gifs.example.com"], spa_fallback = "index.html" },
      { name = "docs", hosts = ["*.docs.example.com"], bucket = "docs", list_directories = true },
    ]
    default_site = "www"
  }

  assert {
    condition     = output.values.gateway.sites[0].spaFallback == "index.html" && !contains(keys(output.values.gateway.sites[0]), "bucket") && output.values.gateway.sites[1].listDirectories && output.values.gateway.defaultSite == "www"
    error_message = "sites values"
  }

  assert {
    condition     = length(output.values.gateway.compression) == 1 && output.values.gateway.compression[0] == "gzip"
    error_message = "compression values"
  }

  assert {
    condition     = output.ingress_url == "https://gifs.example.com/gateway.gif"
    error_message = "ingress URL: ${output.ingress_url}"
  }
  assert {
    condition     = output.values.ingress.hosts[0].host == "gifs.example.com" && output.values.ingress.tls[0].secretName == "gifs-tls" && output.values.ingress.className == "nginx"
    error_message = "ingress values"
  }
  assert {
    condition     = output.values.autoscaling.minReplicas == 3 && output.values.autoscaling.targetCPUUtilizationPercentage == 60 && output.values.autoscaling.targetMemoryUtilizationPercentage == 80
    error_message = "autoscaling values"
  }
  assert {
    condition     = output.values.metrics.serviceMonitor.enabled && output.values.metrics.serviceMonitor.labels.release == "kps" && output.values.dashboard.enabled
    error_message = "monitoring values"
  }
  assert {
    condition     = output.values.networkPolicy.ingressNamespaceSelector.matchLabels["kubernetes.io/metadata.name"] == "ingress"
    error_message = "network policy namespace selector"
  }
  assert {
    condition     = output.values.gateway.diskCache.enabled && output.values.gateway.diskCache.maxBytes == "4GiB" && output.values.gateway.diskCache.sizeLimit == "5Gi" && output.values.gateway.diskCache.existingClaim == ""
    error_message = "disk cache values"
  }
  assert {
    condition     = output.values.gateway.cache.maxBytes == "1GiB" && !can(output.values.resources.limits)
    error_message = "a 1GiB cache is passed on; the chart derives the memory limit"
  }
}

# --- every validation rule ------------------------------------------------------------------

run "keyless_credentials_name_no_secret" {
  command = plan
  variables {
    minio                = { enabled = false }
    external_s3          = { endpoint = "https://minio.example.com:9000" }
    tls_mode             = "existingSecrets"
    tls_existing_secrets = { client = "client-tls" }
    credentials          = "sts-certificate"
  }
  assert {
    condition     = output.values.s3.credentials == "sts-certificate" && output.values.s3.existingSecret == "" && output.credentials_secret_name == null
    error_message = "keyless credentials: ${output.values.s3.credentials} / ${output.values.s3.existingSecret}"
  }
}

run "static_credentials_are_the_default_with_an_external_s3" {
  command = plan
  variables {
    minio                = { enabled = false }
    external_s3          = { endpoint = "https://minio.example.com:9000" }
    tls_mode             = "existingSecrets"
    tls_existing_secrets = { client = "client-tls" }
  }
  assert {
    condition     = output.values.s3.credentials == "static" && output.credentials_secret_name == "gateway-s3-credentials"
    error_message = "external S3: ${output.values.s3.credentials} / ${coalesce(output.credentials_secret_name, "none")}"
  }
}

run "rejects_static_or_chain_credentials_with_chart_minio" {
  command = plan
  variables {
    credentials = "static"
  }
  expect_failures = [var.credentials]
}

run "rejects_existing_secrets_for_minio_without_the_seed_certificate" {
  command = plan
  variables {
    tls_mode             = "existingSecrets"
    tls_existing_secrets = { client = "c", server = "s" }
  }
  expect_failures = [var.tls_existing_secrets]
}

run "rejects_default_site_that_is_not_a_site" {
  command = plan
  variables {
    sites        = [{ name = "www", hosts = ["a.example.com"] }]
    default_site = "docs"
  }
  expect_failures = [var.default_site]
}

run "rejects_unknown_coding" {
  command = plan
  variables {
    compression = ["deflate"]
  }
  expect_failures = [var.compression]
}

run "rejects_bad_namespace" {
  command = plan
  variables {
    namespace = "Web_Apps"
  }
  expect_failures = [var.namespace]
}

run "rejects_bad_release_name" {
  command = plan
  variables {
    release_name = "-gifs"
  }
  expect_failures = [var.release_name]
}

run "rejects_bad_cluster_domain" {
  command = plan
  variables {
    cluster_domain = "Cluster Local"
  }
  expect_failures = [var.cluster_domain]
}

run "rejects_empty_image_tag" {
  command = plan
  variables {
    image = { repository = "gateway", tag = "" }
  }
  expect_failures = [var.image]
}

run "rejects_latest_image_tag" {
  command = plan
  variables {
    image = { repository = "gateway", tag = "latest" }
  }
  expect_failures = [var.image]
}

run "rejects_empty_image_repository" {
  command = plan
  variables {
    image = { repository = " ", tag = "0.1.0" }
  }
  expect_failures = [var.image]
}

run "rejects_bad_pull_policy" {
  command = plan
  variables {
    image = { repository = "gateway", tag = "0.1.0", pull_policy = "Sometimes" }
  }
  expect_failures = [var.image]
}

run "rejects_zero_replicas" {
  command = plan
  variables {
    replicas = 0
  }
  expect_failures = [var.replicas]
}

run "rejects_too_many_replicas" {
  command = plan
  variables {
    replicas = 51
  }
  expect_failures = [var.replicas]
}

run "rejects_fractional_replicas" {
  command = plan
  variables {
    replicas = 2.5
  }
  expect_failures = [var.replicas]
}

run "rejects_inverted_autoscaling_bounds" {
  command = plan
  variables {
    autoscaling = { enabled = true, min_replicas = 5, max_replicas = 2 }
  }
  expect_failures = [var.autoscaling]
}

run "rejects_autoscaling_target_over_100" {
  command = plan
  variables {
    autoscaling = { enabled = true, target_memory = 150 }
  }
  expect_failures = [var.autoscaling]
}

run "rejects_bad_bucket" {
  command = plan
  variables {
    bucket = "My_Bucket"
  }
  expect_failures = [var.bucket]
}

run "rejects_unknown_tls_mode" {
  command = plan
  variables {
    tls_mode = "selfsigned"
  }
  expect_failures = [var.tls_mode]
}

run "rejects_no_tls_with_chart_minio" {
  command = plan
  variables {
    tls_mode = "none"
  }
  expect_failures = [var.tls_mode]
}

run "rejects_chart_ca_with_external_s3" {
  command = plan
  variables {
    minio       = { enabled = false }
    external_s3 = { endpoint = "https://s3.example.com" }
    tls_mode    = "helm"
  }
  expect_failures = [var.tls_mode]
}

run "rejects_existing_secrets_mode_without_secrets" {
  command = plan
  variables {
    tls_mode = "existingSecrets"
  }
  expect_failures = [var.tls_existing_secrets]
}

run "rejects_existing_secrets_mode_without_server_secret_for_minio" {
  command = plan
  variables {
    tls_mode             = "existingSecrets"
    tls_existing_secrets = { client = "c" }
  }
  expect_failures = [var.tls_existing_secrets]
}

run "rejects_minio_off_without_external_endpoint" {
  command = plan
  variables {
    minio    = { enabled = false }
    tls_mode = "none"
  }
  expect_failures = [var.external_s3]
}

run "rejects_bad_external_port" {
  command = plan
  variables {
    minio       = { enabled = false }
    tls_mode    = "none"
    external_s3 = { endpoint = "https://s3.example.com", port = 70000 }
  }
  expect_failures = [var.external_s3]
}

run "rejects_bad_storage_size" {
  command = plan
  variables {
    minio = { storage_size = "ten gigs" }
  }
  expect_failures = [var.minio]
}

run "rejects_bad_credentials_secret_name" {
  command = plan
  variables {
    credentials_secret_name = "Creds!"
  }
  expect_failures = [var.credentials_secret_name]
}

run "rejects_ingress_without_host" {
  command = plan
  variables {
    ingress = { enabled = true }
  }
  expect_failures = [var.ingress]
}

run "rejects_bad_network_policy_namespace" {
  command = plan
  variables {
    network_policy = { enabled = true, monitoring_namespace = "Monitoring" }
  }
  expect_failures = [var.network_policy]
}

run "rejects_bad_cache_size" {
  command = plan
  variables {
    cache_max_bytes = "lots"
  }
  expect_failures = [var.cache_max_bytes]
}
