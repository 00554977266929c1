# The providers, configured here, not in the module: an EKS cluster, authenticated with a token
# from `aws eks get-token` (any of the providers' ways works: kubeconfig, a token, exec).

variable "cluster_endpoint" {
  description = "API server URL of the cluster."
  type        = string
  default     = "https://0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
}

variable "cluster_ca_certificate" {
  description = "PEM of the cluster's CA (base64-decoded)."
  type        = string
  default     = ""
}

variable "cluster_name" {
  description = "Name of the EKS cluster."
  type        = string
  default     = "web"
}

provider "kubernetes" {
  host                   = var.cluster_endpoint
  cluster_ca_certificate = var.cluster_ca_certificate
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", var.cluster_name]
  }
}

provider "helm" {
  kubernetes {
    host                   = var.cluster_endpoint
    cluster_ca_certificate = var.cluster_ca_certificate
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", var.cluster_name]
    }
  }
}
