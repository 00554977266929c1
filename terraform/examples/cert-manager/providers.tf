# The providers, configured here, not in the module: the current context of the local kubeconfig.

provider "kubernetes" {
  config_path = "~/.kube/config"
}

provider "helm" {
  kubernetes {
    config_path = "~/.kube/config"
  }
}
