# The whole system on minikube: gateway, MinIO over mTLS and the seeded GIF, reachable through
# the ingress addon at http://gifs.minikube.test/gateway.gif. See README.md for the commands.

module "gateway" {
  source = "../../"

  release_name = "gifs"
  namespace    = "gifs"
  image = {
    # Built into minikube's image store: `minikube image build -t gateway:0.1.0 .`
    repository  = "gateway"
    tag         = "0.1.0"
    pull_policy = "Never"
  }
  replicas = 2
  bucket   = "gifs"

  ingress = {
    enabled    = true
    class_name = "nginx"
    host       = "gifs.minikube.test"
  }

  minio = {
    storage_size = "1Gi"
  }
}
