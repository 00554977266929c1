output "gif_url" {
  description = "URL of the GIF through the ingress."
  value       = module.gateway.ingress_url
}

output "in_cluster_gif_url" {
  description = "URL of the GIF inside the cluster."
  value       = module.gateway.gif_url
}

output "metrics_url" {
  description = "In-cluster URL of the gateway's Prometheus metrics."
  value       = module.gateway.metrics_url
}

output "namespace" {
  description = "Namespace of the release."
  value       = module.gateway.namespace
}
