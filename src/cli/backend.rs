//! How to reach the bucket: the backend flags shared by `serve`, `seed` and `policies`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::parse_duration;

/// Where the S3 credentials come from (`--credentials`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum CredentialsMode {
    /// Access key and secret key from the flags, files or environment.
    #[default]
    Static,
    /// Temporary credentials from MinIO's AssumeRoleWithCertificate, for the client certificate.
    StsCertificate,
    /// The standard AWS chain: environment, shared profile, web identity (IRSA), ECS and EKS
    /// pod identity, instance metadata.
    Chain,
}

/// How to reach the bucket: shared by `serve` and `seed`.
#[derive(Debug, Clone, Default, Args)]
pub struct BackendArgs {
    /// S3 endpoint URL, e.g. `https://minio:9000`.
    #[arg(long, env = "GATEWAY_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,

    /// Bucket to serve from (or seed into).
    #[arg(long, env = "GATEWAY_BUCKET")]
    pub bucket: Option<String>,

    /// Region used to sign requests (MinIO's default is us-east-1).
    #[arg(long, env = "GATEWAY_REGION", default_value = "us-east-1")]
    pub region: String,

    /// Path-style addressing (`endpoint/bucket/key`), as MinIO expects; `false` for virtual-hosted style.
    #[arg(long, env = "GATEWAY_PATH_STYLE", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub path_style: bool,

    /// PEM bundle of the CA that signs the backend's certificate; only this CA is trusted.
    /// Without it, an https endpoint is verified against the system roots.
    #[arg(long, env = "GATEWAY_CA_CERT", value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,

    /// PEM certificate chain the gateway presents to the backend (mTLS); needs --client-key.
    #[arg(long, env = "GATEWAY_CLIENT_CERT", value_name = "PATH")]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of --client-cert.
    #[arg(long, env = "GATEWAY_CLIENT_KEY", value_name = "PATH")]
    pub client_key: Option<PathBuf>,

    /// Where the S3 credentials come from: `static` keys (the flags below), or
    /// `sts-certificate`: temporary keys MinIO issues for the client certificate
    /// (AssumeRoleWithCertificate; the certificate's common name names the MinIO policy), so
    /// no secret key is held; or `chain`: the standard AWS chain (environment, profile, web
    /// identity / IRSA, ECS and EKS pod identity, instance metadata).
    #[arg(long, env = "GATEWAY_CREDENTIALS", value_enum, default_value_t = CredentialsMode::Static, value_name = "SOURCE")]
    pub credentials: CredentialsMode,

    /// Lifetime asked for temporary credentials (MinIO allows 15m to 365d and may grant less);
    /// they are renewed at two thirds of it.
    #[arg(long, env = "GATEWAY_STS_DURATION", default_value = "1h", value_parser = parse_duration, value_name = "DURATION")]
    pub sts_duration: Duration,

    /// S3 access key id; falls back to AWS_ACCESS_KEY_ID.
    #[arg(
        long,
        env = "GATEWAY_ACCESS_KEY",
        hide_env_values = true,
        conflicts_with = "access_key_file"
    )]
    pub access_key: Option<String>,

    /// File holding the access key id (a mounted Kubernetes Secret).
    #[arg(long, env = "GATEWAY_ACCESS_KEY_FILE", value_name = "PATH")]
    pub access_key_file: Option<PathBuf>,

    /// S3 secret key; falls back to AWS_SECRET_ACCESS_KEY. Prefer --secret-key-file.
    #[arg(
        long,
        env = "GATEWAY_SECRET_KEY",
        hide_env_values = true,
        conflicts_with = "secret_key_file"
    )]
    pub secret_key: Option<String>,

    /// File holding the secret key (a mounted Kubernetes Secret).
    #[arg(long, env = "GATEWAY_SECRET_KEY_FILE", value_name = "PATH")]
    pub secret_key_file: Option<PathBuf>,

    /// Time allowed to open a TCP + TLS connection to the backend.
    #[arg(long, env = "GATEWAY_BACKEND_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub backend_connect_timeout: Duration,

    /// Time allowed for the backend to start answering a request (response headers).
    #[arg(long, env = "GATEWAY_BACKEND_TIMEOUT", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub backend_timeout: Duration,
}
