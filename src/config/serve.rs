//! `serve`'s raw flags ([`crate::cli`]) become a validated configuration, once, before anything
//! binds.
//!
//! This module assembles the parts: listen addresses and client limits checked here, the site
//! (prefix, documents, CORS, Cache-Control), the cache settings, and the backend's own settings
//! ([`crate::backend::settings`]). Each failure is a [`ConfigError`] naming the flag.

use std::net::SocketAddr;
use std::time::Duration;

use crate::backend::settings::BackendConfig;
use crate::cli::ServeArgs;
/// A site's presentation, defined with the sites ([`crate::config::sites`]).
pub use crate::config::sites::Site;
use crate::error::ConfigError;

/// Validated settings for `gateway serve`.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// What is served and how, by host.
    pub sites: crate::config::sites::SitesConfig,
    /// The object cache.
    pub cache: crate::cache::CacheConfig,
    /// The disk tier, if configured.
    pub disk_cache: Option<crate::cache::disk::DiskConfig>,
    /// Content codings for text assets.
    pub compression: crate::http::compression::CompressionConfig,
    /// Whether to follow the bucket's change events.
    pub bucket_events: crate::cli::BucketEvents,
    /// The bearer token of `POST /purge`; `None` turns purging off.
    pub admin_token: Option<crate::backend::settings::Secret>,
    /// Where the operational endpoints listen; `None` serves them on `listen`.
    pub admin_listen: Option<SocketAddr>,
    /// Time /readyz fails before the listener closes, after a shutdown signal.
    pub shutdown_delay: Duration,
    /// Drain time once the listener has closed.
    pub shutdown_grace: Duration,
    /// Client connection limits and timeouts.
    pub limits: Limits,
    /// Whether each request is logged.
    pub access_log: bool,
    /// How often the TLS files are checked for changes.
    pub tls_reload_interval: Duration,
    /// What the backend answers for a missing key.
    pub missing_object_status: crate::cli::MissingObjectStatus,
    /// How often the background probe checks the backend.
    pub backend_probe_interval: Duration,
    /// When the circuit breaker opens.
    pub circuit: crate::backend::circuit::CircuitConfig,
    /// The bucket.
    pub backend: BackendConfig,
}

/// Limits on client connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time to receive a request's headers, the first one included.
    pub header_read_timeout: Duration,
    /// Time a keep-alive connection may stay silent with no request in flight.
    pub idle_timeout: Duration,
    /// Time a response may make no write progress before its connection is closed.
    pub send_timeout: Duration,
    /// How long an HTTP/2 client may send nothing before it is PINGed, and then answer.
    pub http2_keepalive_interval: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most concurrent HTTP/2 streams per connection.
    pub http2_max_streams: u32,
}

/// `None` when the admin endpoints share the data port (same address, not an ephemeral port).
///
/// # Errors
/// A [`ConfigError`] for `--admin-listen` when it does not parse.
pub fn admin_address(listen: SocketAddr, admin: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let admin = parse_listen("--admin-listen", admin)?;
    Ok(if admin == listen && admin.port() != 0 {
        None
    } else {
        Some(admin)
    })
}

impl ServeConfig {
    /// Validates `serve` flags.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first flag that cannot be used.
    pub fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        let listen = parse_listen("--listen", &args.listen)?;
        let mut backend = BackendConfig::from_args(&args.backend)?;
        let sites = crate::config::sites::SitesConfig::from_args(args, &backend.bucket)?;
        if args.cache_max_bytes.as_u64() == 0 && sites.sites.iter().any(|s| s.site.bucket_rules) {
            return Err(ConfigError::new(
                "--site-rules",
                "bucket reads _headers and _redirects through the cache: give --cache-max-bytes more than 0",
            ));
        }
        backend.connection_max_age = positive("--backend-connection-max-age", args.backend_connection_max_age)?;
        Ok(Self {
            listen,
            sites,
            cache: cache_config(args)?,
            disk_cache: disk_config(args)?,
            compression: compression_config(args)?,
            admin_listen: admin_address(listen, &args.admin_listen)?,
            bucket_events: args.bucket_events,
            admin_token: args.admin_token_file.as_deref().map(admin_token).transpose()?,
            shutdown_delay: args.shutdown_delay,
            limits: Limits {
                header_read_timeout: positive("--header-read-timeout", args.header_read_timeout)?,
                idle_timeout: positive("--idle-timeout", args.idle_timeout)?,
                send_timeout: positive("--send-timeout", args.send_timeout)?,
                http2_keepalive_interval: positive("--http2-keepalive-interval", args.http2_keepalive_interval)?,
                max_connections: args.max_connections as usize,
                http2_max_streams: args.http2_max_streams,
            },
            access_log: args.access_log,
            tls_reload_interval: positive("--tls-reload-interval", args.tls_reload_interval)?,
            missing_object_status: args.missing_object_status,
            backend_probe_interval: positive("--backend-probe-interval", args.backend_probe_interval)?,
            circuit: crate::backend::circuit::CircuitConfig {
                failures: args.circuit_breaker_failures,
                open_for: positive("--circuit-breaker-open", args.circuit_breaker_open)?,
                max_in_flight: usize::try_from(args.backend_max_concurrency).unwrap_or(usize::MAX),
            },
            shutdown_grace: args.shutdown_grace,
            backend,
        })
    }
}

/// The purge token in `path`: its first line, at least 16 characters.
///
/// # Errors
/// A [`ConfigError`] for `--admin-token-file` when the file cannot be read or holds no token.
pub fn admin_token(path: &std::path::Path) -> Result<crate::backend::settings::Secret, ConfigError> {
    const FLAG: &str = "--admin-token-file";
    let raw = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(FLAG, format!("cannot read {}: {e}", path.display())))?;
    let token = raw.lines().next().unwrap_or("").trim();
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            FLAG,
            format!(
                "{} must hold a token of at least 16 printable characters (e.g. `openssl rand -hex 32`)",
                path.display()
            ),
        ));
    }
    Ok(crate::backend::settings::Secret::new(token))
}

/// `d`, unless it is zero.
fn positive(flag: &'static str, d: Duration) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        Err(ConfigError::new(flag, "must be greater than 0"))
    } else {
        Ok(d)
    }
}

fn compression_config(args: &ServeArgs) -> Result<crate::http::compression::CompressionConfig, ConfigError> {
    use crate::http::compression::Encoding;
    let mut encodings = Vec::new();
    let list = args.compression.trim();
    if !list.eq_ignore_ascii_case("off") {
        for token in list.split(',').map(str::trim) {
            let e = Encoding::from_token(token).filter(|_| !token.eq_ignore_ascii_case("x-gzip"));
            match e {
                Some(e) if !encodings.contains(&e) => encodings.push(e),
                Some(_) => {}
                None => {
                    return Err(ConfigError::new(
                        "--compression",
                        format!("{token:?} is not a coding; use a list of br, zstd, gzip (e.g. br,gzip) or off"),
                    ));
                }
            }
        }
    }
    Ok(crate::http::compression::CompressionConfig {
        encodings,
        min_bytes: args.compression_min_bytes.as_u64(),
        static_siblings: args.compression_static,
    })
}

/// Largest object the cache may hold (its weigher counts in `u32`).
const MAX_CACHEABLE_OBJECT: u64 = 1 << 30;

/// Smallest and largest disk-tier slice.
const SLICE_BYTES: std::ops::RangeInclusive<u64> = (64 << 10)..=(256 << 20);

fn disk_config(args: &ServeArgs) -> Result<Option<crate::cache::disk::DiskConfig>, ConfigError> {
    let Some(dir) = &args.disk_cache_dir else {
        return Ok(None);
    };
    if dir.as_os_str().is_empty() {
        return Err(ConfigError::new("--disk-cache-dir", "must name a directory"));
    }
    if args.cache_max_bytes.as_u64() == 0 {
        return Err(ConfigError::new(
            "--disk-cache-dir",
            "needs the memory cache on: give --cache-max-bytes more than 0",
        ));
    }
    let slice_bytes = args.disk_cache_slice_bytes.as_u64();
    if !SLICE_BYTES.contains(&slice_bytes) {
        return Err(ConfigError::new(
            "--disk-cache-slice-bytes",
            "must be between 64KiB and 256MiB",
        ));
    }
    let max_bytes = args.disk_cache_max_bytes.as_u64();
    if max_bytes < slice_bytes {
        return Err(ConfigError::new(
            "--disk-cache-max-bytes",
            format!(
                "{} is smaller than one slice (--disk-cache-slice-bytes {})",
                args.disk_cache_max_bytes, args.disk_cache_slice_bytes
            ),
        ));
    }
    Ok(Some(crate::cache::disk::DiskConfig {
        dir: dir.clone(),
        max_bytes,
        slice_bytes,
    }))
}

fn cache_config(args: &ServeArgs) -> Result<crate::cache::CacheConfig, ConfigError> {
    let max_bytes = args.cache_max_bytes.as_u64();
    let max_object_bytes = args.cache_max_object_bytes.as_u64();
    if max_bytes > 0 && max_object_bytes > max_bytes {
        return Err(ConfigError::new(
            "--cache-max-object-bytes",
            format!(
                "{} is larger than --cache-max-bytes {}",
                args.cache_max_object_bytes, args.cache_max_bytes
            ),
        ));
    }
    if max_object_bytes > MAX_CACHEABLE_OBJECT {
        return Err(ConfigError::new("--cache-max-object-bytes", "must be at most 1GiB"));
    }
    if args.cache_ttl.is_zero() {
        return Err(ConfigError::new(
            "--cache-ttl",
            "must be greater than 0 (use --cache-max-bytes 0 to turn the cache off)",
        ));
    }
    // A fill takes twice the object's size: its buffer and the chunks its readers may hold.
    let per_fill = max_object_bytes.saturating_mul(2);
    let fill_budget = match args.cache_fill_budget {
        Some(b) if b.as_u64() < per_fill => {
            return Err(ConfigError::new(
                "--cache-fill-budget",
                format!(
                    "{b} is smaller than twice --cache-max-object-bytes {} (a fill takes twice the object's \
                     size): such objects could never be cached",
                    args.cache_max_object_bytes
                ),
            ));
        }
        Some(b) => b.as_u64(),
        None => (max_bytes / 4).max(per_fill),
    };
    if args.cache_negative_max_entries == 0 {
        return Err(ConfigError::new(
            "--cache-negative-max-entries",
            "must be greater than 0 (use --cache-negative-ttl to shorten how long 404s are kept)",
        ));
    }
    Ok(crate::cache::CacheConfig {
        max_bytes,
        max_object_bytes,
        fill_budget,
        ttl: args.cache_ttl,
        stale_while_revalidate: args.cache_stale_while_revalidate,
        stale_if_error: args.cache_stale_if_error,
        negative_ttl: args.cache_negative_ttl,
        negative_max_entries: args.cache_negative_max_entries,
        honor_no_cache: args.cache_honor_no_cache,
    })
}

/// Parses a listen address such as `0.0.0.0:8080` or `[::]:8080`.
///
/// # Errors
/// A [`ConfigError`] for `flag` when the address does not parse.
pub fn parse_listen(flag: &'static str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse()
        .map_err(|_| ConfigError::new(flag, format!("{s:?} is not an address; use IP:PORT, e.g. 0.0.0.0:8080")))
}
