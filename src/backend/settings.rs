//! How to reach the bucket: the backend's own settings, validated once before anything connects.
//!
//! Shared by `serve` and `seed`. Everything that can be checked without the network is checked
//! here: the endpoint is a URL, the bucket name is one S3 accepts, certificate and key files
//! exist and parse, and credentials are present. Each failure is a [`ConfigError`] naming the
//! flag. The secret key is held in a [`Secret`], which never prints itself.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::tls;
use crate::cli::BackendArgs;
use crate::error::ConfigError;

/// A secret string (the S3 secret key) whose `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the S3 credentials come from.
#[derive(Clone, Debug)]
pub enum CredentialSource {
    /// Keys given to the gateway.
    Static {
        /// Access key id (not secret, but not logged either).
        access_key: String,
        /// Secret key.
        secret_key: Secret,
    },
    /// Temporary keys from MinIO's AssumeRoleWithCertificate, asked for this long.
    StsCertificate {
        /// Lifetime asked for.
        duration: Duration,
    },
    /// The standard AWS credentials chain.
    Chain,
}

/// The shortest and longest `DurationSeconds` MinIO's STS grants (`minExpiry` and `maxExpiry`
/// beside `GetExpiryDuration` in internal/config/identity/tls/config.go); outside them it
/// answers 400 `MissingParameter` ("invalid token expiry") and the gateway would never get
/// credentials.
const STS_DURATION_MIN: Duration = Duration::from_secs(15 * 60);
const STS_DURATION_MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Validated settings for reaching the bucket.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    /// Endpoint URL, e.g. `https://minio:9000`.
    pub endpoint: String,
    /// Whether the endpoint uses TLS.
    pub https: bool,
    /// Bucket name.
    pub bucket: String,
    /// Signing region.
    pub region: String,
    /// Path-style addressing.
    pub path_style: bool,
    /// Where the credentials come from.
    pub credentials: CredentialSource,
    /// TLS settings for the backend, already loaded and checked.
    pub tls: Arc<tls::BackendTls>,
    /// Where the trust and identity came from, for the startup log.
    pub tls_summary: String,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Time to first response byte.
    pub timeout: Duration,
    /// How long pooled connections are handed out for new calls (`serve`'s
    /// `--backend-connection-max-age`; five minutes for the other commands).
    pub connection_max_age: Duration,
}

/// The maximum age of backend connections unless `serve` is told otherwise.
pub const CONNECTION_MAX_AGE: Duration = Duration::from_secs(300);

impl BackendConfig {
    /// Validates the backend flags shared by `serve` and `seed`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first flag that cannot be used.
    pub fn from_args(args: &BackendArgs) -> Result<Self, ConfigError> {
        let endpoint = args.endpoint.as_deref().ok_or_else(|| {
            ConfigError::new(
                "--endpoint",
                "is required (or GATEWAY_ENDPOINT), e.g. https://minio:9000",
            )
        })?;
        let https = validate_endpoint(endpoint)?;
        let bucket = args
            .bucket
            .as_deref()
            .ok_or_else(|| ConfigError::new("--bucket", "is required (or GATEWAY_BUCKET)"))?;
        validate_bucket(bucket)?;
        if args.region.trim().is_empty() {
            return Err(ConfigError::new("--region", "must not be empty (MinIO uses us-east-1)"));
        }

        let credentials = match args.credentials {
            crate::cli::CredentialsMode::Static => CredentialSource::Static {
                access_key: read_credential(
                    "--access-key",
                    args.access_key.as_deref(),
                    args.access_key_file.as_deref(),
                    "AWS_ACCESS_KEY_ID",
                )?,
                secret_key: Secret::new(read_credential(
                    "--secret-key",
                    args.secret_key.as_deref(),
                    args.secret_key_file.as_deref(),
                    "AWS_SECRET_ACCESS_KEY",
                )?),
            },
            crate::cli::CredentialsMode::StsCertificate => {
                if args.client_cert.is_none() || !https {
                    return Err(ConfigError::new(
                        "--credentials",
                        "sts-certificate needs an https --endpoint and --client-cert/--client-key (the certificate is the identity)",
                    ));
                }
                if !(STS_DURATION_MIN..=STS_DURATION_MAX).contains(&args.sts_duration) {
                    return Err(ConfigError::new(
                        "--sts-duration",
                        format!(
                            "{} is outside MinIO's range: give 15m to 365d (8760h)",
                            humantime::format_duration(args.sts_duration)
                        ),
                    ));
                }
                CredentialSource::StsCertificate {
                    duration: args.sts_duration,
                }
            }
            crate::cli::CredentialsMode::Chain => CredentialSource::Chain,
        };

        let identity = match (&args.client_cert, &args.client_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new("--client-key", "is required with --client-cert"));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new("--client-cert", "is required with --client-key"));
            }
        };
        if !https && (identity.is_some() || args.ca_cert.is_some()) {
            let flag = if args.ca_cert.is_some() {
                "--ca-cert"
            } else {
                "--client-cert"
            };
            return Err(ConfigError::new(
                flag,
                format!("needs an https endpoint, but --endpoint is {endpoint}"),
            ));
        }
        let tls = tls::BackendTls::load(args.ca_cert.as_deref(), identity)?;
        let tls_summary = match (&args.ca_cert, identity) {
            _ if !https => "plain http (no TLS)".to_string(),
            (Some(ca), Some((c, _))) => {
                format!("mTLS: trust {}, identity {}", ca.display(), c.display())
            }
            (Some(ca), None) => format!("TLS: trust {}, no client certificate", ca.display()),
            (None, Some((c, _))) => format!("mTLS: system roots, identity {}", c.display()),
            (None, None) => "TLS: system roots, no client certificate".to_string(),
        };

        if args.backend_connect_timeout.is_zero() {
            return Err(ConfigError::new("--backend-connect-timeout", "must be greater than 0"));
        }
        if args.backend_timeout.is_zero() {
            return Err(ConfigError::new("--backend-timeout", "must be greater than 0"));
        }

        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            https,
            bucket: bucket.to_string(),
            region: args.region.trim().to_string(),
            path_style: args.path_style,
            credentials,
            tls: Arc::new(tls),
            tls_summary,
            connect_timeout: args.backend_connect_timeout,
            timeout: args.backend_timeout,
            connection_max_age: CONNECTION_MAX_AGE,
        })
    }
}

/// Returns whether the endpoint is https.
fn validate_endpoint(endpoint: &str) -> Result<bool, ConfigError> {
    let bad = |why: &str| {
        ConfigError::new(
            "--endpoint",
            format!("{endpoint:?} {why}; expected e.g. https://minio:9000"),
        )
    };
    let uri: http::Uri = endpoint.parse().map_err(|_| bad("is not a URL"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(bad("must start with http:// or https://")),
    };
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("must not have a path"));
    }
    Ok(https)
}

/// S3 bucket naming rules: 3-63 characters of lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit.
/// Checks an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens).
///
/// # Errors
/// A [`ConfigError`] for `--bucket`.
pub fn validate_bucket(bucket: &str) -> Result<(), ConfigError> {
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&bucket.len())
        || !ok_chars
        || !ends_ok(bucket.bytes().next())
        || !ends_ok(bucket.bytes().last())
        || bucket.contains("..")
    {
        return Err(ConfigError::new(
            "--bucket",
            format!("{bucket:?} is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')"),
        ));
    }
    Ok(())
}

/// A credential from the flag, else the file flag, else the standard AWS variable.
fn read_credential(
    flag: &'static str,
    value: Option<&str>,
    file: Option<&Path>,
    aws_env: &str,
) -> Result<String, ConfigError> {
    let file_flag: &'static str = if flag == "--access-key" {
        "--access-key-file"
    } else {
        "--secret-key-file"
    };
    let found = if let Some(v) = value {
        Some(v.to_string())
    } else if let Some(path) = file {
        let raw = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(file_flag, format!("cannot read {}: {e}", path.display())))?;
        Some(raw.trim_end_matches(['\n', '\r']).to_string())
    } else {
        std::env::var(aws_env).ok()
    };
    match found {
        Some(v) if !v.trim().is_empty() => Ok(v),
        Some(_) => Err(ConfigError::new(flag, "is empty")),
        None => Err(ConfigError::new(
            flag,
            format!(
                "is required: set {flag}, {file_flag}, {} or {aws_env}",
                crate::cli::env_name(flag)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["gifs", "my-bucket", "a.b.c", "abc", "b12"] {
            assert!(validate_bucket(ok).is_ok(), "{ok}");
        }
        for bad in [
            "b",
            "UPPER",
            "-x-",
            "a..b",
            "under_score",
            "x".repeat(64).as_str(),
            "a/b",
        ] {
            assert!(validate_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints() {
        assert!(validate_endpoint("https://minio:9000").unwrap());
        assert!(!validate_endpoint("http://127.0.0.1:9000/").unwrap());
        for bad in ["minio:9000", "ftp://x", "https://minio:9000/bucket", "not a url"] {
            let e = validate_endpoint(bad).unwrap_err();
            assert_eq!(e.flag, "--endpoint", "{bad}");
        }
    }

    #[test]
    fn secret_is_not_debug_printed() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
