//! Where the S3 credentials come from: static keys, or temporary ones that MinIO issues for
//! the gateway's client certificate (`--credentials sts-certificate`), so that the pod holds no
//! secret key at all.
//!
//! MinIO's `AssumeRoleWithCertificate` (`AssumeRoleWithCertificate` in its cmd/sts-handlers.go):
//! `POST /?Action=AssumeRoleWithCertificate&Version=2011-06-15&DurationSeconds=N` over TLS with
//! the client certificate, no signature; the answer's `<Credentials>` is read by
//! [`crate::backend::sts`]. The certificate's common name names the MinIO policy.
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

use crate::backend::sts::{self, ASSUME_ROLE_WITH_CERTIFICATE, StsError};
use crate::backend::web_identity::WebIdentity;
use crate::metrics::Metrics;

/// The shortest time between two planned renewals.
const MIN_RENEWAL_INTERVAL: Duration = Duration::from_secs(1);

/// The STS client: POSTs `AssumeRoleWithCertificate` over mTLS and keeps the answer.
#[derive(Clone, Debug)]
pub struct CertificateCredentials {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: sts::Client,
    endpoint: String,
    duration: Duration,
    /// The credentials held, and when they were issued.
    current: RwLock<Option<(Credentials, SystemTime)>>,
    fetching: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
}

impl CertificateCredentials {
    /// A client of `endpoint`'s STS, asking for credentials valid `duration`, over `tls` (which
    /// presents the client certificate; a reloaded certificate is used from the next call).
    pub fn new(endpoint: &str, tls: Arc<rustls::ClientConfig>, duration: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                client: sts::client(&tls),
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
                // At least a second between renewals, whatever the STS granted.
                let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
                tokio::time::sleep(wait.max(MIN_RENEWAL_INTERVAL)).await;
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
        sts::call(&self.inner.client, ASSUME_ROLE_WITH_CERTIFICATE, &url, None).await
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
///
/// A web identity token (`AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN`, and no static keys
/// in the environment) is exchanged by [`WebIdentity`] instead of aws-config's provider, which
/// cannot read MinIO's answer (see there).
#[derive(Debug)]
pub struct Chain {
    config: aws_config::provider_config::ProviderConfig,
    web_identity: Option<WebIdentity>,
    chain: tokio::sync::OnceCell<aws_config::default_provider::credentials::DefaultCredentialsChain>,
}

impl Chain {
    /// The chain for `region`, making its calls with `http` (the STS's with `tls`).
    pub fn new(http: crate::backend::transport::MtlsHttpClient, tls: &Arc<rustls::ClientConfig>, region: &str) -> Self {
        Self {
            config: aws_config::provider_config::ProviderConfig::default()
                .with_http_client(http)
                .with_region(Some(aws_sdk_s3::config::Region::new(region.to_string()))),
            web_identity: WebIdentity::from_env(tls, region),
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
            if let Some(web_identity) = &self.web_identity {
                return web_identity.provide().await.map_err(CredentialsError::provider_error);
            }
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
