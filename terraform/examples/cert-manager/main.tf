# The chart's MinIO with certificates from cert-manager (installed in the cluster beforehand):
# the chart makes a private CA Issuer, and cert-manager issues and renews MinIO's server
# certificate and the gateway's and the seed job's client certificates; the gateway reloads
# renewed ones (and renews its MinIO credentials with them) without a restart.

module "gateway" {
  source = "../../"

  release_name = "gifs"
  namespace    = "gifs"
  image = {
    repository = "registry.example.com/gateway"
    tag        = "0.1.0"
  }
  bucket   = "gifs"
  tls_mode = "certManager"
}

output "release_revision" {
  description = "Revision of the Helm release."
  value       = module.gateway.release_revision
}
