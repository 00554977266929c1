# Installs the gateway chart (helm/gateway) on an existing cluster: the namespace, the S3
# credentials Secret (MinIO's root credentials, generated unless supplied, which only MinIO and
# its setup Job mount; or an external S3's keys), then the release.
# Every name and chart value comes from modules/values, which validates the inputs and is
# tested without a cluster (`terraform test` there).

module "values" {
  source = "./modules/values"

  release_name            = var.release_name
  namespace               = var.namespace
  cluster_domain          = var.cluster_domain
  image                   = var.image
  replicas                = var.replicas
  autoscaling             = var.autoscaling
  bucket                  = var.bucket
  tls_mode                = var.tls_mode
  tls_existing_secrets    = var.tls_existing_secrets
  minio                   = var.minio
  external_s3             = var.external_s3
  credentials_secret_name = var.credentials_secret_name
  ingress                 = var.ingress
  metrics                 = var.metrics
  network_policy          = var.network_policy
  cache_max_bytes         = var.cache_max_bytes
  disk_cache              = var.disk_cache
  compression             = var.compression
  credentials             = var.credentials
  sites                   = var.sites
  default_site            = var.default_site
}

locals {
  generate_credentials = var.s3_credentials == null
  labels = {
    "app.kubernetes.io/part-of"    = "gateway"
    "app.kubernetes.io/managed-by" = "terraform"
  }
}

resource "kubernetes_namespace_v1" "this" {
  count = var.create_namespace ? 1 : 0

  metadata {
    name = module.values.namespace
    labels = merge(local.labels, {
      # The chart's pods run under the restricted Pod Security Standard.
      "pod-security.kubernetes.io/enforce" = "restricted"
    })
  }
}

# MinIO's root credentials (the gateway and the seed job hold none: they use their client
# certificates). Generated once and kept in the state (sensitive) unless var.s3_credentials
# supplies them (always, for an external S3 with static credentials).
resource "random_password" "secret_key" {
  count = local.generate_credentials && module.values.credentials_secret_name != null ? 1 : 0

  length  = 40
  special = false
}

resource "kubernetes_secret_v1" "credentials" {
  # Keyless credentials with an external S3 (sts-certificate, chain) store no key.
  count = module.values.credentials_secret_name != null ? 1 : 0

  metadata {
    name      = module.values.credentials_secret_name
    namespace = module.values.namespace
    labels    = local.labels
  }

  type = "Opaque"
  data = {
    "access-key" = local.generate_credentials ? "gateway" : var.s3_credentials.access_key
    "secret-key" = local.generate_credentials ? random_password.secret_key[0].result : var.s3_credentials.secret_key
  }

  depends_on = [kubernetes_namespace_v1.this]
}

resource "helm_release" "gateway" {
  name      = module.values.release_name
  namespace = module.values.namespace
  chart     = coalesce(var.chart_path, "${path.module}/../helm/gateway")

  values = concat([yamlencode(module.values.values)], var.extra_values)

  # Wait for ready gateway pods, then for the seed hook job; undo a failed upgrade.
  wait             = true
  wait_for_jobs    = true
  timeout          = var.helm_timeout_seconds
  atomic           = var.atomic
  cleanup_on_fail  = true
  max_history      = 10
  create_namespace = false

  depends_on = [kubernetes_secret_v1.credentials, kubernetes_namespace_v1.this]
}
