//! An S3-compatible backend in the process: s3s + s3s-fs over a directory, behind a rustls
//! acceptor that requires client certificates from a given CA, with SigV4 credentials.
//!
//! `gateway demo` runs it so a fresh machine needs no MinIO; the integration tests run it so
//! every test goes through real TCP, real mTLS and real request signing.
//!
//! It is a crate of its own so that the gateway's production build carries no S3 server, and so
//! that it cannot lean on the gateway's code: it imports nothing of the gateway, and where it
//! speaks a MinIO-only API it answers as MinIO's source does.
//!
//! # Layout
//! - this file: the server (TLS, SigV4, s3s-fs) and the events it publishes;
//! - [`sts`]: the temporary keys MinIO's STS issues and the policies they carry;
//!   [`sts_api`]: its AssumeRoleWithCertificate and AssumeRoleWithWebIdentity;
//! - [`admin`]: the admin API's add-canned-policy, and each request's check against its key's
//!   policy;
//! - [`policy`]: IAM policy documents;
//! - [`events`]: MinIO's ListenBucketNotification;
//! - [`faults`]: switches that make the backend misbehave, for the tests.

#![deny(missing_docs)]

pub mod admin;
pub mod events;
pub mod faults;
pub mod policy;
pub mod sts;
pub mod sts_api;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use crate::faults::Faults;

/// What the embedded backend needs: where to keep objects, its TLS material, its credentials.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedS3Config<'a> {
    /// Directory holding the buckets (one sub-directory each).
    pub root: &'a Path,
    /// PEM of the CA whose client certificates are accepted.
    pub client_ca_pem: &'a str,
    /// PEM certificate chain of the server.
    pub server_cert_pem: &'a str,
    /// PEM private key of the server.
    pub server_key_pem: &'a str,
    /// Access key id clients must sign with.
    pub access_key: &'a str,
    /// Secret key clients must sign with.
    pub secret_key: &'a str,
    /// Refuse TLS clients without a certificate (the chart's old TLS front did); `false` asks
    /// for one but lets clients without one connect, as MinIO does with
    /// `MINIO_IDENTITY_TLS_ENABLE=on` (the certificate is an identity for
    /// AssumeRoleWithCertificate, not a gate).
    pub require_client_cert: bool,
}

/// A running embedded backend; stopped when [`EmbeddedS3::stop`] is called or it is dropped.
#[derive(Debug)]
pub struct EmbeddedS3 {
    addr: SocketAddr,
    faults: Arc<Faults>,
    sts: Arc<crate::sts::Sts>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl EmbeddedS3 {
    /// Starts serving S3 on `listener`.
    ///
    /// # Errors
    /// When the directory or the TLS material cannot be used.
    pub fn start(listener: TcpListener, cfg: EmbeddedS3Config<'_>) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(server_tls(&cfg)?));
        let faults = Arc::new(Faults::default());
        let sts = Arc::new(crate::sts::Sts::default());
        let service = s3_service_with(cfg.root, cfg.access_key, cfg.secret_key, faults.clone(), sts.clone())?;

        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            // Connection tasks live in this set: stopping the backend drops it, which closes
            // every connection, as a process that exits would.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let (tcp, peer) = tokio::select! {
                    r = listener.accept() => match r {
                        Ok(a) => a,
                        Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue; }
                    },
                    _ = &mut stopped => break,
                    Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                };
                let acceptor = acceptor.clone();
                let service = service.clone();
                connections.spawn(async move {
                    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "embedded S3: TLS handshake refused");
                            return;
                        }
                        Err(_) => return,
                    };
                    // The client certificate goes with each request: AssumeRoleWithCertificate
                    // reads its identity from it.
                    let peer = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| crate::sts::PeerCertificate(c.to_vec()));
                    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                        if let Some(peer) = &peer {
                            req.extensions_mut().insert(peer.clone());
                        }
                        hyper::service::Service::call(&service, req)
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            faults,
            sts,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Switches for misbehaving as broken backends and proxies do, for tests.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Its STS: which certificate common names get temporary credentials, and for how long.
    pub fn sts(&self) -> &crate::sts::Sts {
        &self.sts
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its endpoint URL, `https://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The S3 service itself, without transport: s3s-fs over `root` (answering as S3 does where
/// s3s-fs differs), requiring SigV4 signatures with the given credentials or those `sts`
/// issued, each held to its policy, with MinIO's admin, STS and listen routes.
fn s3_service_with(
    root: &Path,
    access_key: &str,
    secret_key: &str,
    faults: Arc<Faults>,
    sts: Arc<crate::sts::Sts>,
) -> anyhow::Result<s3s::service::S3Service> {
    let fs = s3s_fs::FileSystem::new(root)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("cannot serve S3 from {}", root.display()))?;
    let root = root.canonicalize()?;
    let (events, _) = tokio::sync::broadcast::channel(EVENT_BACKLOG);
    let listen = crate::events::ListenRoute::new(root.clone(), events.clone(), faults.clone(), sts.clone());
    let store = Store {
        fs,
        root,
        faults,
        events,
    };
    let mut builder = s3s::service::S3ServiceBuilder::new(store);
    builder.set_auth(crate::sts::Auth::new(access_key, secret_key, sts.clone()));
    builder.set_access(crate::admin::Access::new(sts.clone()));
    builder.set_route(crate::sts::Routes(vec![
        Box::new(crate::admin::AdminRoute::new(access_key, sts.clone())),
        Box::new(listen),
        Box::new(crate::sts_api::StsRoute::new(sts)),
    ]));
    Ok(builder.build())
}

/// s3s-fs with S3's answer for keys that are "directories" on its disk.
///
/// s3s-fs keeps `a/b` as the file `b` in the directory `a`, so a GET of the key `a` would open a
/// directory and fail with a 500; S3 (and MinIO) answer `NoSuchKey`, which this wrapper does.
/// A GET in a bucket that does not exist is `NoSuchBucket`, as in S3, not s3s-fs's `NoSuchKey`.
/// Every operation the gateway, its seed and its tests use is delegated; the rest answer
/// NotImplemented.
struct Store {
    fs: s3s_fs::FileSystem,
    root: std::path::PathBuf,
    faults: Arc<Faults>,
    /// Change events for `ListenBucketNotification` subscribers.
    events: tokio::sync::broadcast::Sender<crate::events::BucketEvent>,
}

/// Change events a slow subscriber may fall behind by before it misses some (MinIO, too,
/// drops events for a subscriber that does not keep up).
const EVENT_BACKLOG: usize = 1024;

impl Store {
    /// The MD5 ETag s3s-fs gives an object written in one PUT.
    async fn etag(&self, bucket: &str, key: &str) -> Option<s3s::dto::ETag> {
        if self.is_directory(bucket, key) || !plain_name(bucket) {
            return None;
        }
        let data = tokio::fs::read(self.root.join(bucket).join(key)).await.ok()?;
        Some(s3s::dto::ETag::Strong(hex::encode(<md5::Md5 as md5::Digest>::digest(
            &data,
        ))))
    }

    /// Whether `bucket` is a valid name with no directory behind it: S3 answers `NoSuchBucket`
    /// for it where s3s-fs would say `NoSuchKey`.
    fn bucket_missing(&self, bucket: &str) -> bool {
        !bucket.is_empty() && plain_name(bucket) && !self.root.join(bucket).is_dir()
    }

    /// Whether the object exists (a regular file under the bucket).
    fn exists(&self, bucket: &str, key: &str) -> bool {
        plain_name(bucket)
            && !key.split('/').any(|s| s == ".." || s == ".")
            && self.root.join(bucket).join(key).is_file()
    }

    /// The error for a key that does not exist: `NoSuchKey`, or `AccessDenied` when the
    /// caller may not list the bucket.
    fn missing_key(&self) -> s3s::S3Error {
        if self.faults.denies_listing() {
            s3s::s3_error!(AccessDenied)
        } else {
            s3s::s3_error!(NoSuchKey)
        }
    }

    /// Whether the object changed after `since` (compared in whole seconds, as HTTP dates are).
    fn modified_after(&self, bucket: &str, key: &str, since: &s3s::dto::Timestamp) -> bool {
        let Ok(modified) = std::fs::metadata(self.root.join(bucket).join(key)).and_then(|m| m.modified()) else {
            return false;
        };
        let secs = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        s3s::dto::Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)) > *since
    }

    fn is_directory(&self, bucket: &str, key: &str) -> bool {
        let safe = !key.split('/').any(|s| s == ".." || s == ".") && plain_name(bucket);
        key.is_empty() || key.ends_with('/') || (safe && self.root.join(bucket).join(key).is_dir())
    }
}

/// Whether an `If-Match` (strong comparison) or `If-None-Match` (`weak`) condition matches.
fn etag_matches(condition: &s3s::dto::ETagCondition, current: &s3s::dto::ETag, weak: bool) -> bool {
    match condition {
        s3s::dto::ETagCondition::Any => true,
        s3s::dto::ETagCondition::ETag(e) if weak => e.weak_cmp(current),
        s3s::dto::ETagCondition::ETag(e) => e.strong_cmp(current),
    }
}

/// Whether `bucket` names one directory under the root: no `/` and no `.`, so it can be joined
/// to the root path without leaving it.
fn plain_name(bucket: &str) -> bool {
    !bucket.contains(['/', '.'])
}

#[async_trait::async_trait]
impl s3s::S3 for Store {
    async fn get_object(
        &self,
        req: s3s::S3Request<s3s::dto::GetObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::GetObjectOutput>> {
        let (bucket, key) = (&req.input.bucket, &req.input.key);
        if self.bucket_missing(bucket) {
            return Err(s3s::s3_error!(NoSuchBucket));
        }
        if self.is_directory(bucket, key) || !self.exists(bucket, key) {
            return Err(self.missing_key());
        }
        // s3s-fs ignores the conditional headers of GET; S3 and MinIO evaluate them: a failed
        // If-Match or If-Unmodified-Since is 412, a matching If-None-Match is 304.
        let conditional = req.input.if_match.is_some() || req.input.if_none_match.is_some();
        let current = if conditional {
            self.etag(bucket, key).await
        } else {
            None
        };
        if let Some(condition) = &req.input.if_match
            && !current.as_ref().is_some_and(|c| etag_matches(condition, c, false))
        {
            return Err(s3s::s3_error!(PreconditionFailed));
        }
        if req.input.if_match.is_none()
            && let Some(since) = &req.input.if_unmodified_since
            && self.modified_after(bucket, key, since)
        {
            return Err(s3s::s3_error!(PreconditionFailed));
        }
        if let Some(condition) = &req.input.if_none_match
            && current.as_ref().is_some_and(|c| etag_matches(condition, c, true))
        {
            return Err(s3s::s3_error!(NotModified));
        }
        let mut req = req;
        if self.faults.ignores_range() {
            req.input.range = None;
        }
        self.fs.get_object(req).await
    }

    async fn head_object(
        &self,
        req: s3s::S3Request<s3s::dto::HeadObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::HeadObjectOutput>> {
        let (bucket, key) = (&req.input.bucket, &req.input.key);
        if self.is_directory(bucket, key) || !self.exists(bucket, key) {
            return Err(self.missing_key());
        }
        self.fs.head_object(req).await
    }

    async fn put_object(
        &self,
        mut req: s3s::S3Request<s3s::dto::PutObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::PutObjectOutput>> {
        if !self.faults.keeps_aws_chunked() {
            req.input.content_encoding = req.input.content_encoding.take().and_then(|c| trim_aws_chunked(&c));
        }
        let (bucket, key, size) = (
            req.input.bucket.clone(),
            req.input.key.clone(),
            req.input.content_length,
        );
        let resp = self.fs.put_object(req).await?;
        let etag = resp.output.e_tag.as_ref().map(|e| e.value().to_string());
        let _ = self.events.send(crate::events::BucketEvent {
            name: "s3:ObjectCreated:Put",
            bucket,
            key,
            size: size.and_then(|n| u64::try_from(n).ok()),
            etag,
        });
        Ok(resp)
    }

    async fn delete_object(
        &self,
        req: s3s::S3Request<s3s::dto::DeleteObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::DeleteObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let resp = self.fs.delete_object(req).await?;
        let _ = self.events.send(crate::events::BucketEvent {
            name: "s3:ObjectRemoved:Delete",
            bucket,
            key,
            size: None,
            etag: None,
        });
        Ok(resp)
    }

    async fn head_bucket(
        &self,
        req: s3s::S3Request<s3s::dto::HeadBucketInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::HeadBucketOutput>> {
        if self.faults.denies_listing() {
            return Err(s3s::s3_error!(AccessDenied));
        }
        self.fs.head_bucket(req).await
    }

    async fn create_bucket(
        &self,
        req: s3s::S3Request<s3s::dto::CreateBucketInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn list_objects_v2(
        &self,
        req: s3s::S3Request<s3s::dto::ListObjectsV2Input>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::ListObjectsV2Output>> {
        if self.faults.denies_listing() {
            return Err(s3s::s3_error!(AccessDenied));
        }
        self.fs.list_objects_v2(req).await
    }

    async fn list_buckets(
        &self,
        req: s3s::S3Request<s3s::dto::ListBucketsInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }
}

/// TLS 1.2/1.3 server configuration that verifies client certificates against the CA (and
/// requires one when the configuration says so).
fn server_tls(cfg: &EmbeddedS3Config<'_>) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cfg.client_ca_pem.as_bytes()) {
        roots.add(cert.context("client CA PEM")?)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let verifier = if cfg.require_client_cert {
        verifier.build()?
    } else {
        verifier.allow_unauthenticated().build()?
    };
    let chain = CertificateDer::pem_slice_iter(cfg.server_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("server certificate PEM")?;
    let key = PrivateKeyDer::from_pem_slice(cfg.server_key_pem.as_bytes()).context("server key PEM")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    // HTTP/1.1 only: s3s 0.14 sends a body with error responses to HEAD, which HTTP/2 clients
    // reject as a protocol error.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// MinIO's `trimAwsChunkedContentEncoding` (cmd/handler-utils.go), which `extractMetadata`
/// applies to every upload's `Content-Encoding`: the `aws-chunked` entries of the
/// comma-separated list go (compared exactly, not trimmed), the rest is joined again with `,`;
/// nothing left is no `Content-Encoding` at all.
fn trim_aws_chunked(coding: &str) -> Option<String> {
    let kept: Vec<&str> = coding.split(',').filter(|c| *c != "aws-chunked").collect();
    let joined = kept.join(",");
    (!joined.is_empty()).then_some(joined)
}
