//! `gateway serve`'s flags: listeners, sites, caching, compression, limits and timeouts.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{BackendArgs, parse_duration};

/// Cache-Control for objects without their own, unless `--cache-control` says otherwise.
pub const DEFAULT_CACHE_CONTROL: &str = "public, max-age=300";

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

/// Where site rules come from besides the sites file (`--site-rules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteRules {
    /// Only the sites file's tables.
    Off,
    /// Also `_headers` and `_redirects` at the site's root in the bucket.
    Bucket,
}

/// Whether to follow the bucket's change events (`--bucket-events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BucketEvents {
    /// Subscribe (MinIO's ListenBucketNotification); on a backend without it, rely on the TTL.
    Auto,
    /// Do not subscribe.
    Off,
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

    /// Where a site's header and redirect rules come from besides the sites file: `bucket`
    /// reads `_headers` and `_redirects` at the site's root in the bucket (Netlify and
    /// Cloudflare Pages syntax), through the cache; those files are never served.
    #[arg(long, env = "GATEWAY_SITE_RULES", value_enum, default_value_t = SiteRules::Off, value_name = "FROM")]
    pub site_rules: SiteRules,

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

    /// A response header by path, in the `_headers` way: `PATTERN Name: value` sets it,
    /// `PATTERN ! Name` removes it (repeatable; one per line in the variable), e.g.
    /// `/assets/* Cache-Control: immutable`.
    #[arg(
        long = "header-rule",
        env = "GATEWAY_HEADER_RULE",
        value_delimiter = '\n',
        value_name = "RULE"
    )]
    pub header_rules: Vec<String>,

    /// A redirect by path, as a `_redirects` line: `FROM TO [STATUS]` (301 by default; 200
    /// serves TO in place), repeatable (one per line in the variable), e.g.
    /// `/blog/* /posts/:splat 301`.
    #[arg(
        long = "redirect",
        env = "GATEWAY_REDIRECT",
        value_delimiter = '\n',
        value_name = "RULE"
    )]
    pub redirects: Vec<String>,

    /// Paths behind HTTP Basic authentication for the one-site case: `PATTERN HTPASSWD [REALM]`,
    /// the file of bcrypt hashes (`htpasswd -B`) mounted from a Secret (repeatable; one per line
    /// in the variable), e.g. `/staging/* /etc/gateway/staff.htpasswd Staging`.
    #[arg(
        long = "protect",
        env = "GATEWAY_PROTECT",
        value_delimiter = '\n',
        value_name = "RULE"
    )]
    pub protect: Vec<String>,

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

    /// A directory for the disk tier: objects over --cache-max-object-bytes are kept there in
    /// slices (off without it; needs the memory cache on).
    #[arg(long, env = "GATEWAY_DISK_CACHE_DIR", value_name = "DIR")]
    pub disk_cache_dir: Option<std::path::PathBuf>,

    /// Bytes of slices the disk tier keeps at most (least recently used go first).
    #[arg(
        long,
        env = "GATEWAY_DISK_CACHE_MAX_BYTES",
        default_value = "1GiB",
        value_name = "SIZE"
    )]
    pub disk_cache_max_bytes: bytesize::ByteSize,

    /// Bytes per disk-tier slice: a range fetches the slices it covers from the bucket.
    #[arg(
        long,
        env = "GATEWAY_DISK_CACHE_SLICE_BYTES",
        default_value = "8MiB",
        value_name = "SIZE"
    )]
    pub disk_cache_slice_bytes: bytesize::ByteSize,

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

    /// Time a response may write nothing (a client that stopped reading) before its connection
    /// is closed, releasing the backend stream it holds.
    #[arg(long, env = "GATEWAY_SEND_TIMEOUT", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub send_timeout: Duration,

    /// An HTTP/2 client that sends no frame for this long is sent a PING, and its connection is
    /// closed when the answer does not come within the same time (a half-open connection).
    #[arg(long, env = "GATEWAY_HTTP2_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub http2_keepalive_interval: Duration,

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

    /// Most backend calls in flight at once; more are answered 503 with Retry-After at once
    /// (and at most 4 while the backend is failing).
    #[arg(long, env = "GATEWAY_BACKEND_MAX_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub backend_max_concurrency: u32,

    /// How long a backend connection takes new calls: older ones finish what they carry and
    /// close, so connections move to backends scaled out behind a Service or a DNS name.
    #[arg(long, env = "GATEWAY_BACKEND_CONNECTION_MAX_AGE", default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub backend_connection_max_age: Duration,

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
