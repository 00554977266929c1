output "values" {
  description = "The chart's values for these inputs; pass yamlencode(values) to helm_release."
  value       = local.values
}

output "fullname" {
  description = "Prefix of the chart's resource names (the chart's gateway.fullname)."
  value       = local.fullname
}

output "namespace" {
  description = "Namespace of the release."
  value       = var.namespace
}

output "release_name" {
  description = "Name of the Helm release."
  value       = var.release_name
}

output "credentials_secret_name" {
  description = "Secret with the S3 credentials (access-key, secret-key), created by the root module; null when none is stored (keyless credentials with an external S3)."
  value       = local.stores_keys ? local.credentials_secret_name : null
}

output "credentials_mode" {
  description = "Where the gateway and the seed job get credentials: sts-certificate, static or chain."
  value       = local.credentials_mode
}

output "client_tls_secret_name" {
  description = "Secret with the gateway's client certificate (tls.crt, tls.key, ca.crt); empty with tls_mode = none."
  value       = local.client_tls_secret_name
}

output "server_tls_secret_name" {
  description = "Secret with MinIO's server certificate; empty when MinIO is disabled."
  value       = local.server_tls_secret_name
}

output "s3_endpoint" {
  description = "S3 endpoint the gateway and the seed job use."
  value       = local.endpoint
}

output "gif_url" {
  description = "In-cluster URL of the seeded GIF, through the gateway's Service."
  value       = local.gif_url
}

output "ingress_url" {
  description = "URL of the GIF through the ingress; null when the ingress is disabled."
  value       = local.ingress_url
}

output "metrics_url" {
  description = "In-cluster URL of the gateway's Prometheus metrics (admin port)."
  value       = local.metrics_url
}
