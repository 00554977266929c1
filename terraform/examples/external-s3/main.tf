# An existing MinIO (or S3) instead of the chart's: the gateway's keys and client certificate
# already exist there. The keys come in as a sensitive variable (TF_VAR_s3_secret_key) and go
# into the credentials Secret; the client certificate Secret is made beforehand, e.g.
#   kubectl -n gifs create secret generic gateway-client-tls \
#     --from-file=tls.crt=client.pem --from-file=tls.key=client-key.pem --from-file=ca.crt=ca.pem

variable "s3_secret_key" {
  description = "Secret key of the gateway's MinIO user."
  type        = string
  sensitive   = true
}

module "gateway" {
  source = "../../"

  release_name = "gifs"
  namespace    = "gifs"
  image = {
    repository = "registry.example.com/gateway"
    tag        = "0.1.0"
  }
  bucket = "gifs"

  minio = {
    enabled = false
  }
  external_s3 = {
    endpoint = "https://minio.storage.svc.cluster.local:9000"
    port     = 9000
  }
  credentials    = "static"
  s3_credentials = { access_key = "gateway", secret_key = var.s3_secret_key }
  tls_mode       = "existingSecrets"
  tls_existing_secrets = {
    client = "gateway-client-tls"
  }
}

output "gif_url" {
  description = "In-cluster URL of the seeded GIF."
  value       = module.gateway.gif_url
}
