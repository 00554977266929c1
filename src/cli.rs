//! Command-line interface: the raw flags, exactly as the user typed them.
//!
//! Every flag also reads an environment variable named `GATEWAY_<FLAG>` (dashes become
//! underscores), which is how the Helm chart and Terraform configure the binary. Values are
//! kept raw here; [`crate::config`] turns them into a validated configuration before anything
//! binds or connects. Secret values never have defaults and their environment values are hidden
//! from `--help`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Cache-Control for objects without their own, unless `--cache-control` says otherwise.
pub const DEFAULT_CACHE_CONTROL: &str = "public, max-age=300";

/// Static-file gateway in front of one S3/MinIO bucket.
#[derive(Debug, Parser)]
#[command(
    name = "gateway",
    version,
    about,
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "GATEWAY_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `gateway=debug,info`; when unset, `RUST_LOG` is used, else `info`.
    #[arg(long, global = true, env = "GATEWAY_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the objects of a bucket over HTTP.
    Serve(Box<ServeArgs>),
    /// Upload the bundled GIF (or --file) to the bucket, idempotently.
    Seed(Box<SeedArgs>),
    /// Create MinIO policies from the NAME.json files of a directory (MinIO's admin API).
    Policies(Box<PoliciesArgs>),
    /// Generate a development CA, a server certificate for the S3 backend and a client certificate.
    Certs(CertsArgs),
    /// Run everything on this machine: an embedded mTLS S3 backend, the seed, and the gateway.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What the backend answers for a key that does not exist (`--missing-object-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MissingObjectStatus {
    /// Learn it from the backend (403 when the credentials lack s3:ListBucket).
    Auto,
    /// 404 NoSuchKey only: a 403 is a backend failure (502).
    #[value(name = "404")]
    NotFound,
    /// 403 AccessDenied on an object is a missing key too (a GetObject-only policy).
    #[value(name = "403")]
    Forbidden,
}

/// Whether to follow the bucket's change events (`--bucket-events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BucketEvents {
    /// Subscribe (MinIO's ListenBucketNotification); on a backend without it, rely on the TTL.
    Auto,
    /// Do not subscribe.
    Off,
}

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

/// `gateway serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on for HTTP.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub listen: String,

    /// Sites file (TOML): host names mapped to a bucket and prefix, each with its own documents,
    /// CORS and Cache-Control; the flags below are every site's defaults.
    #[arg(long, env = "GATEWAY_SITES", value_name = "FILE")]
    pub sites: Option<PathBuf>,

    /// Object served for `/` and for paths ending in `/`.
    #[arg(long, env = "GATEWAY_INDEX", default_value = "index.html", value_name = "NAME")]
    pub index: String,

    /// Serve only keys under this prefix of the bucket (e.g. `site/`); nothing outside it is reachable.
    #[arg(long, env = "GATEWAY_PREFIX", default_value = "", value_name = "PREFIX")]
    pub prefix: String,

    /// Object served, with status 404, for paths that do not exist (e.g. `404.html`).
    #[arg(long, env = "GATEWAY_ERROR_DOCUMENT", value_name = "KEY")]
    pub error_document: Option<String>,

    /// Object served, with status 200, for paths that do not exist: single-page apps (e.g. `index.html`).
    #[arg(long, env = "GATEWAY_SPA_FALLBACK", value_name = "KEY")]
    pub spa_fallback: Option<String>,

    /// What the backend answers for a missing key: 403 when the credentials lack s3:ListBucket
    /// (then AccessDenied on an object is served as missing), 404, or auto to learn it.
    #[arg(long, env = "GATEWAY_MISSING_OBJECT_STATUS", value_enum, default_value_t = MissingObjectStatus::Auto, value_name = "STATUS")]
    pub missing_object_status: MissingObjectStatus,

    /// Cache-Control of not-found answers (the error document and the plain 404), so that CDNs
    /// and browsers do not keep them.
    #[arg(
        long,
        env = "GATEWAY_ERROR_CACHE_CONTROL",
        default_value = "no-store",
        value_name = "VALUE"
    )]
    pub error_cache_control: String,

    /// Cache-Control for objects that do not carry their own.
    #[arg(long, env = "GATEWAY_CACHE_CONTROL", default_value = DEFAULT_CACHE_CONTROL, value_name = "VALUE")]
    pub cache_control: String,

    /// Render an HTML listing for a directory without an index document (needs s3:ListBucket).
    #[arg(long, env = "GATEWAY_LIST_DIRECTORIES")]
    pub list_directories: bool,

    /// Allow cross-origin GET/HEAD from this origin (repeatable, comma-separated, or `*`); CORS is off without it.
    #[arg(
        long = "cors-origin",
        env = "GATEWAY_CORS_ORIGIN",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub cors_origins: Vec<String>,

    /// Content codings offered for text assets, in order of preference (comma-separated: br,
    /// zstd, gzip), or `off`. Objects served from the cache are compressed once per version
    /// and coding, and the result is cached beside them.
    #[arg(
        long,
        env = "GATEWAY_COMPRESSION",
        default_value = "br,zstd,gzip",
        value_name = "CODINGS"
    )]
    pub compression: String,

    /// Objects smaller than this are sent as stored, whatever the client accepts.
    #[arg(
        long,
        env = "GATEWAY_COMPRESSION_MIN_BYTES",
        default_value = "1KiB",
        value_name = "SIZE"
    )]
    pub compression_min_bytes: bytesize::ByteSize,

    /// Send a precompressed sibling (`app.js.br`, `.zst`, `.gz` beside `app.js`) when the bucket
    /// holds one, in place of the gateway's own compression (one more lookup per coding, cached).
    #[arg(long, env = "GATEWAY_COMPRESSION_STATIC")]
    pub compression_static: bool,

    /// Follow the bucket's change events (MinIO's ListenBucketNotification, needs
    /// s3:ListenBucketNotification) and drop changed objects from the cache at once; `auto`
    /// falls back to --cache-ttl on a backend without the API.
    #[arg(long, env = "GATEWAY_BUCKET_EVENTS", value_enum, default_value_t = BucketEvents::Auto, value_name = "MODE")]
    pub bucket_events: BucketEvents,

    /// Bytes of objects kept in memory; 0 turns the cache off.
    #[arg(long, env = "GATEWAY_CACHE_MAX_BYTES", default_value = "256MiB", value_name = "SIZE")]
    pub cache_max_bytes: bytesize::ByteSize,

    /// Objects larger than this are streamed, never cached.
    #[arg(
        long,
        env = "GATEWAY_CACHE_MAX_OBJECT_BYTES",
        default_value = "16MiB",
        value_name = "SIZE"
    )]
    pub cache_max_object_bytes: bytesize::ByteSize,

    /// How long a cached object is served before it is revalidated with the backend.
    #[arg(long, env = "GATEWAY_CACHE_TTL", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub cache_ttl: Duration,

    /// How long past its TTL a cached copy may be served while the backend fails revalidation.
    #[arg(long, env = "GATEWAY_CACHE_STALE_IF_ERROR", default_value = "300s", value_parser = parse_duration, value_name = "DURATION")]
    pub cache_stale_if_error: Duration,

    /// How long past its TTL a cached copy is served at once while one background request
    /// revalidates it (RFC 5861); 0 makes the first request past the TTL wait for revalidation.
    #[arg(long, env = "GATEWAY_CACHE_STALE_WHILE_REVALIDATE", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub cache_stale_while_revalidate: Duration,

    /// How long a missing key (404) is remembered.
    #[arg(long, env = "GATEWAY_CACHE_NEGATIVE_TTL", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub cache_negative_ttl: Duration,

    /// Most missing keys remembered at once (kept apart from the objects, so a scan of random
    /// paths cannot evict them).
    #[arg(
        long,
        env = "GATEWAY_CACHE_NEGATIVE_MAX_ENTRIES",
        default_value_t = 10_000,
        value_name = "COUNT"
    )]
    pub cache_negative_max_entries: u64,

    /// Memory for objects being read into the cache at once (each takes twice its size: its
    /// buffer and the chunks the requests reading along hold); when it is spent, further misses
    /// stream instead of filling. Default: a quarter of --cache-max-bytes, at least twice
    /// --cache-max-object-bytes.
    #[arg(long, env = "GATEWAY_CACHE_FILL_BUDGET", value_name = "SIZE")]
    pub cache_fill_budget: Option<bytesize::ByteSize>,

    /// Whether a request's `Cache-Control: no-cache` forces revalidation with the backend.
    #[arg(long, env = "GATEWAY_CACHE_HONOR_NO_CACHE", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub cache_honor_no_cache: bool,

    /// Address of the operational endpoints (/metrics, /healthz, /readyz); the same value as
    /// --listen serves them on the data port.
    #[arg(
        long,
        env = "GATEWAY_ADMIN_LISTEN",
        default_value = "0.0.0.0:9090",
        value_name = "ADDR"
    )]
    pub admin_listen: String,

    /// File holding the bearer token of `POST /purge` on the admin port (a mounted Secret);
    /// without it, purging is off.
    #[arg(long, env = "GATEWAY_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// After SIGTERM, how long /readyz fails while requests are still accepted, so load
    /// balancers stop sending traffic before the listener closes.
    #[arg(long, env = "GATEWAY_SHUTDOWN_DELAY", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_delay: Duration,

    /// How long in-flight responses may take to finish once the listener has closed.
    #[arg(long, env = "GATEWAY_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_grace: Duration,

    /// Time a client has to send a request's headers, the first one included: a connection that
    /// sends nothing this long is closed (slow-loris, idle sockets).
    #[arg(long, env = "GATEWAY_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub header_read_timeout: Duration,

    /// A keep-alive connection (HTTP/1 or HTTP/2) with no request in flight that sends nothing
    /// for this long is closed.
    #[arg(long, env = "GATEWAY_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,

    /// Most concurrent HTTP/2 streams (requests) per client connection.
    #[arg(long, env = "GATEWAY_HTTP2_MAX_STREAMS", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_streams: u32,

    /// How often a background HeadBucket checks the backend (gateway_backend_up, /readyz body).
    #[arg(long, env = "GATEWAY_BACKEND_PROBE_INTERVAL", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub backend_probe_interval: Duration,

    /// Consecutive backend failures (unreachable, timeout, 5xx) that open the circuit breaker:
    /// requests that need the backend then get 503 with Retry-After at once. 0 turns it off.
    #[arg(
        long,
        env = "GATEWAY_CIRCUIT_BREAKER_FAILURES",
        default_value_t = 5,
        value_name = "COUNT"
    )]
    pub circuit_breaker_failures: u32,

    /// How long the circuit stays open before one request is let through to try the backend.
    #[arg(long, env = "GATEWAY_CIRCUIT_BREAKER_OPEN", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub circuit_breaker_open: Duration,

    /// Most client connections open at once; more wait in the kernel's accept queue.
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// How often the --ca-cert, --client-cert and --client-key files are checked for changes.
    #[arg(long, env = "GATEWAY_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub tls_reload_interval: Duration,

    /// One log line per request (method, path, status, bytes, duration, cache result, request id).
    #[arg(long, env = "GATEWAY_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub access_log: bool,

    /// The bucket and how to reach it.
    #[command(flatten)]
    pub backend: BackendArgs,
}

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
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub backend_listen: String,

    /// Run only the embedded S3 backend (seeded with the GIF), for trying `gateway serve` and
    /// `gateway seed` by hand with the variables of --env-file.
    #[arg(long, requires = "env_file")]
    pub backend_only: bool,

    /// Write the GATEWAY_* variables that reach the embedded backend to this file (mode 0600;
    /// removed when the demo stops). Load it with `set -a; . FILE; set +a`.
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,
}

/// Parses `30s`, `5m`, `1h 30m`, `250ms`.
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

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (expected e.g. 30s, 5m, 250ms)"))
}

/// Renders a clap error as the single line the user needs: what is wrong, which flag, and
/// clap's hints (the valid values, a "did you mean" suggestion).
///
/// clap's own rendering spans several lines (usage, tips); operators reading a pod's
/// `CrashLoopBackOff` log want one line that names the flag and the fix.
pub fn one_line_error(err: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() == ErrorKind::MissingRequiredArgument
        && let Some(ContextValue::Strings(args)) = err.get(ContextKind::InvalidArg)
    {
        let names: Vec<String> = args.iter().map(|a| flag_with_env(a)).collect();
        return format!("error: missing required {}", names.join(", "));
    }
    let rendered = err.render().to_string();
    let mut line = rendered
        .lines()
        .next()
        .unwrap_or("error: invalid arguments")
        .trim()
        .to_string();
    let strings = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    };
    let valid = strings(ContextKind::ValidValue);
    if !valid.is_empty() {
        line.push_str(&format!("; possible values: {}", valid.join(", ")));
    }
    let suggested: Vec<String> = [
        ContextKind::SuggestedArg,
        ContextKind::SuggestedValue,
        ContextKind::SuggestedSubcommand,
    ]
    .into_iter()
    .flat_map(strings)
    .collect();
    if !suggested.is_empty() {
        line.push_str(&format!("; did you mean '{}'?", suggested.join("' or '")));
    }
    format!("{line} (see --help)")
}

/// `--bucket <BUCKET>` becomes `--bucket <BUCKET> (or GATEWAY_BUCKET)`.
pub fn flag_with_env(arg: &str) -> String {
    let flag = arg.split_whitespace().next().unwrap_or(arg);
    match flag.strip_prefix("--") {
        Some(name) => format!("{arg} (or {})", env_name(name)),
        None => arg.to_string(),
    }
}

/// The environment variable that backs a long flag name.
pub fn env_name(flag: &str) -> String {
    format!(
        "GATEWAY_{}",
        flag.trim_start_matches('-').replace('-', "_").to_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_duration_names_the_flag_on_one_line() {
        let err = Cli::try_parse_from(["gateway", "seed", "--wait", "soon"]).unwrap_err();
        let line = one_line_error(&err);
        assert!(line.contains("--wait"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn one_line_errors_keep_valid_values_and_suggestions() {
        let err = Cli::try_parse_from(["gateway", "--log-format", "yaml", "certs", "--out", "x"]).unwrap_err();
        let line = one_line_error(&err);
        assert!(line.contains("possible values: text, json"), "{line}");
        let err = Cli::try_parse_from(["gateway", "seed", "--buckt", "gifs"]).unwrap_err();
        let line = one_line_error(&err);
        assert!(line.contains("did you mean '--bucket'?"), "{line}");
        let err = Cli::try_parse_from(["gateway", "serv"]).unwrap_err();
        let line = one_line_error(&err);
        assert!(line.contains("did you mean 'serve'?"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn env_names_follow_the_flag() {
        assert_eq!(env_name("--client-cert"), "GATEWAY_CLIENT_CERT");
        assert_eq!(flag_with_env("--out <DIR>"), "--out <DIR> (or GATEWAY_OUT)");
    }
}
