# Every part switched on: the chart's MinIO (no key outside it: the gateway and the seed job use
# their client certificates), several sites, an ingress with TLS, autoscaling, monitoring
# (ServiceMonitor, alerts, dashboard) and NetworkPolicies.

module "gateway" {
  source = "../../"

  release_name = "web"
  namespace    = "web"
  image = {
    repository = "registry.example.com/gateway"
    tag        = "0.1.0"
  }
  bucket = "site"

  autoscaling = {
    enabled      = true
    min_replicas = 3
    max_replicas = 12
    target_cpu   = 60
  }
  ingress = {
    enabled         = true
    class_name      = "nginx"
    host            = "www.example.com"
    tls_secret_name = "www-example-com-tls"
  }
  metrics = {
    service_monitor        = true
    service_monitor_labels = { release = "kube-prometheus-stack" }
    dashboard              = true
  }
  network_policy = {
    enabled              = true
    ingress_namespace    = "ingress-nginx"
    monitoring_namespace = "monitoring"
  }
  cache_max_bytes = "256MiB"
  compression     = ["br", "zstd", "gzip"]
  sites = [
    { name = "www", hosts = ["www.example.com"], prefix = "www/", spa_fallback = "index.html" },
    { name = "docs", hosts = ["docs.example.com"], prefix = "docs/", error_document = "404.html" },
  ]
  default_site = "www"
  minio = {
    storage_size = "50Gi"
  }
}

output "release_status" {
  description = "Status of the Helm release."
  value       = module.gateway.release_status
}

output "ingress_url" {
  description = "URL of the seeded GIF through the ingress."
  value       = module.gateway.ingress_url
}
