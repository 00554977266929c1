output "namespace" {
  description = "Namespace of the release."
  value       = module.values.namespace
}

output "release_name" {
  description = "Name of the Helm release (`helm status <release_name> -n <namespace>`)."
  value       = helm_release.gateway.name
}

output "chart_version" {
  description = "Version of the chart installed."
  value       = helm_release.gateway.version
}

output "release_status" {
  description = "Status of the Helm release (`deployed` after a successful apply)."
  value       = helm_release.gateway.status
}

output "release_revision" {
  description = "Revision of the Helm release (it grows with every upgrade; `helm rollback` takes one)."
  value       = helm_release.gateway.metadata[0].revision
}

output "gif_url" {
  description = "In-cluster URL of the seeded GIF, through the gateway's Service."
  value       = module.values.gif_url
}

output "ingress_url" {
  description = "URL of the GIF through the ingress; null when the ingress is disabled."
  value       = module.values.ingress_url
}

output "metrics_url" {
  description = "In-cluster URL of the gateway's Prometheus metrics (admin port 9090)."
  value       = module.values.metrics_url
}

output "credentials_secret_name" {
  description = "Secret with the S3 credentials (keys access-key, secret-key); null with keyless credentials."
  value       = one(kubernetes_secret_v1.credentials[*].metadata[0].name)
}

output "client_tls_secret_name" {
  description = "Secret with the gateway's client certificate (tls.crt, tls.key, ca.crt); empty with tls_mode = none."
  value       = module.values.client_tls_secret_name
}

output "server_tls_secret_name" {
  description = "Secret with MinIO's server certificate (tls.crt, tls.key, ca.crt); empty when MinIO is disabled."
  value       = module.values.server_tls_secret_name
}
