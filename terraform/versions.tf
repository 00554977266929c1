# The providers this module needs. It configures none of them: the caller does (see
# examples/), so the module can be called with count, for_each and depends_on, and the cluster
# can authenticate any way the providers allow (kubeconfig, an EKS/GKE/AKS token, exec).
terraform {
  required_version = ">= 1.9"

  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.36"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.17"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}
