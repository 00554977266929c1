//! Where the S3 credentials come from: static keys, or temporary ones that MinIO issues for
//! the gateway's client certificate (`--credentials sts-certificate`), so that the pod holds no
//! secret key at all.
//!
//! MinIO's `AssumeRoleWithCertificate` (its STS documentation, "AssumeRoleWithCertificate",
//! `docs/sts/tls.md`): `POST /?Action=AssumeRoleWithCertificate&Version=2011-06-15&DurationSeconds=N`
//! over TLS with the client certificate, no signature; the answer is
//! `<AssumeRoleWithCertificateResponse><AssumeRoleWithCertificateResult><Credentials>` with
//! `AccessKeyId`, `SecretAccessKey`, `SessionToken` and `Expiration` (RFC 3339). The
//! certificate's common name names the MinIO policy.
//!
//! The credentials are kept and renewed by one background task at two thirds of their
//! lifetime, so requests never wait for the STS and there is never one call per request; a
//! request that finds none (start-up, or renewals failing until expiry) fetches them, and
//! concurrent ones share that fetch. MinIO answers expired temporary credentials with
//! `InvalidAccessKeyId` (not `ExpiredToken`): renewing ahead avoids that.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError, future};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error::error_chain;
use crate::metrics::Metrics;

/// The STS client: POSTs `AssumeRoleWithCertificate` over mTLS and keeps the answer.
#[derive(Clone, Debug)]
pub struct CertificateCredentials {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Empty<Bytes>>,
    endpoint: String,
    duration: Duration,
    /// The credentials held, and when they were issued.
    current: RwLock<Option<(Credentials, SystemTime)>>,
    fetching: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
}

/// Why temporary credentials could not be had, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    /// The request did not complete.
    #[error("AssumeRoleWithCertificate: {0}")]
    Transport(String),
    /// The backend refused, with its answer.
    #[error(
        "AssumeRoleWithCertificate refused ({status}): {detail} (does the certificate's common name name a MinIO policy, and is MINIO_IDENTITY_TLS_ENABLE on?)"
    )]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error code and message of the answer.
        detail: String,
    },
    /// The answer could not be read.
    #[error("AssumeRoleWithCertificate: unreadable answer: {0}")]
    Unreadable(String),
}

impl CertificateCredentials {
    /// A client of `endpoint`'s STS, asking for credentials valid `duration`, over `tls` (which
    /// presents the client certificate; a reloaded certificate is used from the next call).
    pub fn new(endpoint: &str, tls: Arc<rustls::ClientConfig>, duration: Duration, metrics: Arc<Metrics>) -> Self {
        let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(Duration::from_secs(5)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Self {
            inner: Arc::new(Inner {
                // A new connection for each call (they are rare): the identity is the
                // certificate of the handshake, and a pooled connection would keep presenting
                // the old one after a rotation.
                client: Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(0)
                    .build(https),
                endpoint: endpoint.trim_end_matches('/').to_string(),
                duration,
                current: RwLock::new(None),
                fetching: tokio::sync::Mutex::new(()),
                metrics,
            }),
        }
    }

    /// The credentials in use, unless they expire within `margin` (at most a sixth of their
    /// lifetime, for short grants).
    fn usable(&self, margin: Duration) -> Option<Credentials> {
        let current = self.inner.current.read().unwrap_or_else(|p| p.into_inner());
        let (creds, issued) = current.as_ref()?;
        let Some(expiry) = creds.expiry() else {
            return Some(creds.clone());
        };
        let lifetime = expiry.duration_since(*issued).unwrap_or_default();
        (expiry > SystemTime::now() + margin.min(lifetime / 6)).then(|| creds.clone())
    }

    /// Credentials for a request: those held, else fetched now (once for all who wait).
    ///
    /// # Errors
    /// [`StsError`] when the STS cannot be reached or refuses.
    pub async fn get(&self) -> Result<Credentials, StsError> {
        if let Some(c) = self.usable(Duration::from_secs(5)) {
            return Ok(c);
        }
        let one = self.inner.fetching.lock().await;
        if let Some(c) = self.usable(Duration::from_secs(5)) {
            return Ok(c);
        }
        let renewed = self.renew().await;
        drop(one);
        renewed
    }

    /// Fetches new credentials and keeps them.
    ///
    /// # Errors
    /// As [`CertificateCredentials::get`].
    pub async fn renew(&self) -> Result<Credentials, StsError> {
        let result = self.fetch().await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.inner
            .metrics
            .credential_refreshes
            .with_label_values(&[outcome])
            .inc();
        let creds = result?;
        if let Some(expiry) = creds.expiry() {
            let secs = expiry.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            self.inner
                .metrics
                .credential_expiry
                .set(i64::try_from(secs).unwrap_or(i64::MAX));
        }
        *self.inner.current.write().unwrap_or_else(|p| p.into_inner()) = Some((creds.clone(), SystemTime::now()));
        Ok(creds)
    }

    /// Drops the credentials held, so that the next request fetches new ones (the client
    /// certificate changed, or the backend no longer takes them).
    pub fn forget(&self) {
        *self.inner.current.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Renews the credentials at two thirds of their lifetime, for as long as it runs; a
    /// failed renewal is retried with backoff (1 s doubling to 30 s) while the old ones last.
    pub async fn keep_fresh(self) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let issued_at = || {
                self.inner
                    .current
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .map(|(_, issued)| *issued)
            };
            let held = self.inner.current.read().unwrap_or_else(|p| p.into_inner()).clone();
            // Two thirds into the lifetime the backend granted (it may grant less than asked).
            let renew_at = held.as_ref().and_then(|(c, issued)| {
                let lifetime = c.expiry()?.duration_since(*issued).ok()?;
                Some(*issued + lifetime.mul_f64(2.0 / 3.0))
            });
            if let Some(at) = renew_at {
                tokio::time::sleep(at.duration_since(SystemTime::now()).unwrap_or_default()).await;
            }
            let one = self.inner.fetching.lock().await;
            if issued_at() != held.map(|(_, issued)| issued) {
                // Renewed meanwhile (by a request, or for a new certificate): plan from those.
                continue;
            }
            let renewed = self.renew().await;
            drop(one);
            match renewed {
                Ok(_) => backoff = Duration::from_secs(1),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot renew the temporary S3 credentials");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn fetch(&self) -> Result<Credentials, StsError> {
        let url = format!(
            "{}/?Action=AssumeRoleWithCertificate&Version=2011-06-15&DurationSeconds={}",
            self.inner.endpoint,
            self.inner.duration.as_secs().max(1)
        );
        let req = http::Request::post(url)
            .body(Empty::new())
            .map_err(|e| StsError::Transport(e.to_string()))?;
        let resp = tokio::time::timeout(Duration::from_secs(30), self.inner.client.request(req))
            .await
            .map_err(|_| StsError::Transport("no answer within 30s".into()))?
            .map_err(|e| StsError::Transport(error_chain(&e)))?;
        let status = resp.status().as_u16();
        let body = tokio::time::timeout(Duration::from_secs(30), resp.into_body().collect())
            .await
            .map_err(|_| StsError::Transport("the answer stalled".into()))?
            .map_err(|e| StsError::Transport(e.to_string()))?
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        if status != 200 {
            let detail = match (tag(&text, "Code"), tag(&text, "Message")) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code,
                _ => text.chars().take(200).collect(),
            };
            return Err(StsError::Refused { status, detail });
        }
        parse_credentials(&text)
    }
}

impl ProvideCredentials for CertificateCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            // The error itself is the source, so callers can tell a refusal from the chain.
            self.get().await.map_err(CredentialsError::provider_error)
        })
    }
}

/// The standard AWS credentials chain (`aws-config`'s default chain: environment, shared
/// profile, web identity token / IRSA, ECS and EKS pod identity, instance metadata), built on
/// first use. Its own HTTP calls (STS, metadata) go through the gateway's backend client, so
/// they trust what the backend trust is (`--ca-cert`, else the system roots);
/// `AWS_ENDPOINT_URL_STS` points its STS elsewhere, e.g. at MinIO. The SDK caches what it
/// returns until shortly before expiry.
#[derive(Debug)]
pub struct Chain {
    config: aws_config::provider_config::ProviderConfig,
    chain: tokio::sync::OnceCell<aws_config::default_provider::credentials::DefaultCredentialsChain>,
}

impl Chain {
    /// The chain for `region`, making its calls with `http`.
    pub fn new(http: crate::backend::transport::MtlsHttpClient, region: &str) -> Self {
        Self {
            config: aws_config::provider_config::ProviderConfig::default()
                .with_http_client(http)
                .with_region(Some(aws_sdk_s3::config::Region::new(region.to_string()))),
            chain: tokio::sync::OnceCell::new(),
        }
    }
}

impl ProvideCredentials for Chain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let chain = self
                .chain
                .get_or_init(|| {
                    aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                        .configure(self.config.clone())
                        .build()
                })
                .await;
            chain.provide_credentials().await
        })
    }
}

/// The text of the first `<name>...</name>` in `xml`, unescaped.
fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The credentials of an `AssumeRoleWithCertificate` answer.
fn parse_credentials(xml: &str) -> Result<Credentials, StsError> {
    let field = |name: &str| tag(xml, name).ok_or_else(|| StsError::Unreadable(format!("no {name}")));
    let expiration = field("Expiration")?;
    let expiry =
        parse_rfc3339(&expiration).ok_or_else(|| StsError::Unreadable(format!("Expiration {expiration:?}")))?;
    Ok(Credentials::new(
        field("AccessKeyId")?,
        field("SecretAccessKey")?,
        Some(field("SessionToken")?),
        Some(expiry),
        "gateway-sts-certificate",
    ))
}

/// `2026-11-23T18:00:00Z` (fractional seconds allowed, UTC only) as a time.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3600 + min * 60 + sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<AssumeRoleWithCertificateResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithCertificateResult><Credentials><AccessKeyId>YC12ZBHUVW588BQAE5BM</AccessKeyId><SecretAccessKey>Zgl9+zdE0pZ88+hLqtfh0ocLN+WQTJixHouCkZkW</SecretAccessKey><Expiration>2021-07-19T20:10:45Z</Expiration><SessionToken>eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.e30.x</SessionToken></Credentials></AssumeRoleWithCertificateResult><ResponseMetadata><RequestId>169339CD8B3A6948</RequestId></ResponseMetadata></AssumeRoleWithCertificateResponse>"#;
        let c = parse_credentials(xml).unwrap();
        assert_eq!(c.access_key_id(), "YC12ZBHUVW588BQAE5BM");
        assert_eq!(c.secret_access_key(), "Zgl9+zdE0pZ88+hLqtfh0ocLN+WQTJixHouCkZkW");
        assert_eq!(c.session_token(), Some("eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.e30.x"));
        assert_eq!(c.expiry(), Some(UNIX_EPOCH + Duration::from_secs(1_626_725_445)));
        assert!(parse_credentials("<Error><Code>AccessDenied</Code></Error>").is_err());
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:01.250Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_801))
        );
        assert_eq!(parse_rfc3339("2021-07-19T20:10:45+02:00"), None);
        assert_eq!(parse_rfc3339("2021-13-19T20:10:45Z"), None);
    }
}
