//! The flags of the commands besides `serve`: `seed`, `policies`, `certs` and `demo`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{BackendArgs, parse_duration};

/// `gateway seed`.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// Object key to write; defaults to the file's name.
    #[arg(long, env = "GATEWAY_KEY")]
    pub key: Option<String>,

    /// Seed this file instead of the GIF bundled in the binary.
    #[arg(long, env = "GATEWAY_FILE", value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Leave an existing object with different content as it is.
    #[arg(long, env = "GATEWAY_NO_OVERWRITE")]
    pub no_overwrite: bool,

    /// How long to keep retrying while the backend is unreachable or starting.
    #[arg(long, env = "GATEWAY_WAIT", default_value = "120s", value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Duration,

    /// After writing the object, POST this purge URL to every address its host name resolves
    /// to (every gateway pod behind a headless Service), e.g.
    /// `http://gw-admin-headless:9090/purge?key=gateway.gif`.
    #[arg(long, env = "GATEWAY_PURGE_URL", value_name = "URL", requires = "admin_token_file")]
    pub purge_url: Option<String>,

    /// File holding the gateways' purge token (`--admin-token-file` of `serve`).
    #[arg(long, env = "GATEWAY_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// The bucket and how to reach it.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `gateway policies`.
#[derive(Debug, Clone, Args)]
pub struct PoliciesArgs {
    /// Directory of `NAME.json` IAM policy documents; each becomes the canned policy `NAME`
    /// (a client certificate with the common name `NAME` gets it from AssumeRoleWithCertificate).
    #[arg(long, env = "GATEWAY_FROM", value_name = "DIR")]
    pub from: PathBuf,

    /// How long to keep retrying while the backend is unreachable or starting.
    #[arg(long, env = "GATEWAY_WAIT", default_value = "120s", value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Duration,

    /// How to reach MinIO: credentials with admin rights (the root keys), and the bucket the
    /// policies are for.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `gateway certs`.
#[derive(Debug, Clone, Args)]
pub struct CertsArgs {
    /// Directory to write the PEM files into (created if missing).
    #[arg(long, env = "GATEWAY_OUT", value_name = "DIR")]
    pub out: PathBuf,

    /// DNS name or IP address of the S3 backend, for its certificate (repeatable).
    #[arg(long = "server-name", env = "GATEWAY_SERVER_NAME", value_delimiter = ',', default_values_t = [String::from("localhost"), String::from("127.0.0.1")])]
    pub server_names: Vec<String>,

    /// Common name of the gateway's client certificate.
    #[arg(long, env = "GATEWAY_CLIENT_NAME", default_value = "gateway")]
    pub client_name: String,

    /// Another client certificate with this common name, written as `client-NAME.pem` and
    /// `client-NAME-key.pem` (repeatable), e.g. one per MinIO policy.
    #[arg(long = "extra-client", env = "GATEWAY_EXTRA_CLIENT", value_delimiter = ',', value_name = "NAME", value_parser = parse_client_name)]
    pub extra_clients: Vec<String>,

    /// Validity of the certificates, in days.
    #[arg(long, env = "GATEWAY_DAYS", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,

    /// Overwrite existing files.
    #[arg(long, env = "GATEWAY_FORCE")]
    pub force: bool,
}

/// `gateway demo`.
#[cfg(feature = "demo")]
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Address the gateway listens on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub listen: String,

    /// Address of /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "GATEWAY_ADMIN_LISTEN",
        default_value = "0.0.0.0:9090",
        value_name = "ADDR"
    )]
    pub admin_listen: String,

    /// Address of the embedded S3 backend (port 0: any free port).
    #[arg(
        long,
        env = "GATEWAY_BACKEND_LISTEN",
        default_value = "127.0.0.1:0",
        value_name = "ADDR"
    )]
    pub backend_listen: String,

    /// Run only the embedded S3 backend (seeded with the GIF), for trying `gateway serve` and
    /// `gateway seed` by hand with the variables of --env-file.
    #[arg(long, env = "GATEWAY_BACKEND_ONLY", requires = "env_file")]
    pub backend_only: bool,

    /// Write the GATEWAY_* variables that reach the embedded backend to this file (mode 0600;
    /// removed when the demo stops). Load it with `set -a; . FILE; set +a`.
    #[arg(long, env = "GATEWAY_ENV_FILE", value_name = "PATH")]
    pub env_file: Option<PathBuf>,
}

/// A client certificate's common name that is also a safe file name part.
fn parse_client_name(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !s.starts_with('.')
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a usable name (1-64 letters, digits, '-', '_', '.')"
        ))
    }
}
