//! The S3 bucket: reads, writes and probes through one aws-sdk-s3 client.
//!
//! Every backend call goes through [`Storage`], which passes it through the circuit breaker,
//! times it, counts it by operation and outcome, and turns the SDK's error into a
//! [`StorageError`] that says what happened ([`crate::backend::classify`]).
//! Object bodies are returned as the SDK's streaming body: nothing is read into memory here.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;

use crate::backend::circuit::{Admission, Circuit, Health};
use crate::backend::classify::classify;
pub use crate::backend::client::Retries;
use crate::backend::credentials::CertificateCredentials;
use crate::backend::missing::MissingKeys;
use crate::backend::settings::BackendConfig;
use crate::error::StorageError;
use crate::meta::{ObjectMeta, StoredHeaders};
use crate::metrics::Metrics;

/// Builds an [`ObjectMeta`] from a GetObject or HeadObject output (same accessors, two types).
macro_rules! object_meta {
    ($out:expr, $length:expr) => {
        ObjectMeta {
            content_length: $length,
            content_type: $out.content_type().map(str::to_string),
            etag: $out.e_tag().map(str::to_string),
            last_modified: $out.last_modified().and_then(|t| SystemTime::try_from(*t).ok()),
            cache_control: $out.cache_control().map(str::to_string),
            stored: StoredHeaders {
                content_encoding: $out.content_encoding().map(str::to_string),
                content_disposition: $out.content_disposition().map(str::to_string),
                content_language: $out.content_language().map(str::to_string),
                expires: $out.expires_string().map(str::to_string),
            },
            metadata: sorted($out.metadata()),
        }
    };
}
pub(super) use object_meta;

/// An object being streamed from the backend.
#[derive(Debug)]
pub struct Object {
    /// Its metadata.
    pub meta: ObjectMeta,
    /// The body, still streaming from the backend.
    pub body: SdkBody,
    /// `Content-Range` of a ranged answer (`bytes START-END/LEN`), as the backend sent it.
    pub content_range: Option<String>,
}

/// One page of a directory listing.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// Full keys of the sub-prefixes ("directories"), ending in `/`.
    pub directories: Vec<String>,
    /// Objects directly under the prefix.
    pub objects: Vec<ListedObject>,
    /// Continuation token of the next page, if any.
    pub next: Option<String>,
}

/// An object in a listing.
#[derive(Clone, Debug)]
pub struct ListedObject {
    /// Full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time.
    pub last_modified: Option<SystemTime>,
    /// Entity tag, quoted as S3 sends it.
    pub etag: Option<String>,
}

/// What to store with an uploaded object besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct PutOptions<'a> {
    /// `Content-Type`.
    pub content_type: &'a str,
    /// `Cache-Control`, if any.
    pub cache_control: Option<&'a str>,
    /// User metadata (`x-amz-meta-*`).
    pub metadata: &'a [(&'a str, String)],
    /// Only create: `If-None-Match: *`, so an existing object gives
    /// [`StorageError::PreconditionFailed`] instead of being replaced.
    pub only_if_absent: bool,
    /// `Content-Encoding`, `Content-Disposition`, `Content-Language`, `Expires` (an HTTP date).
    pub stored: StoredHeaders,
}

/// A handle on the configured bucket.
#[derive(Clone, Debug)]
pub struct Storage {
    pub(super) client: Client,
    pub(super) bucket: String,
    pub(super) metrics: Arc<Metrics>,
    /// The breaker every call passes; `None` for callers with their own retry loop (`seed`).
    circuit: Option<Arc<Circuit>>,
    /// Whether an `AccessDenied` on an object means it is missing.
    pub(super) missing: Arc<MissingKeys>,
    /// The temporary credentials, with `--credentials sts-certificate`.
    sts: Option<CertificateCredentials>,
}

impl Storage {
    /// Builds the S3 client for `cfg`. No connection is made until the first call.
    pub fn new(cfg: &BackendConfig, metrics: Arc<Metrics>, retries: Retries) -> Self {
        let (client, sts) = crate::backend::client::build(cfg, &metrics, retries);
        Self {
            client,
            bucket: cfg.bucket.clone(),
            metrics,
            circuit: None,
            missing: Arc::default(),
            sts,
        }
    }

    /// The same bucket with `missing` deciding what a missing key looks like.
    pub fn with_missing(mut self, missing: Arc<MissingKeys>) -> Self {
        self.missing = missing;
        self
    }

    /// The missing-key policy.
    pub fn missing(&self) -> &MissingKeys {
        &self.missing
    }

    /// The same bucket with every call passing `circuit`.
    pub fn with_circuit(mut self, circuit: Arc<Circuit>) -> Self {
        self.circuit = Some(circuit);
        self
    }

    /// The circuit breaker, if any.
    pub fn circuit(&self) -> Option<&Circuit> {
        self.circuit.as_deref()
    }

    /// The same client, circuit and policies for another bucket of the same backend.
    pub fn for_bucket(&self, bucket: &str) -> Self {
        Self {
            bucket: bucket.to_string(),
            ..self.clone()
        }
    }

    /// The temporary credentials' keeper, with `--credentials sts-certificate`.
    pub fn sts(&self) -> Option<&CertificateCredentials> {
        self.sts.as_ref()
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Starts streaming an object.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] when the key does not exist; other variants for backend trouble.
    pub async fn get(&self, key: &str) -> Result<Object, StorageError> {
        self.get_range(key, None, None).await
    }

    /// Starts streaming an object or a byte range of it (`range` is an S3 `Range` value such as
    /// `bytes=0-99`). With `if_match`, the backend refuses (412) if the object changed since
    /// that ETag was read, so a range never mixes two versions.
    ///
    /// # Errors
    /// As [`Storage::get`]; [`StorageError::PreconditionFailed`] when `if_match` does not match.
    pub async fn get_range(
        &self,
        key: &str,
        range: Option<String>,
        if_match: Option<&str>,
    ) -> Result<Object, StorageError> {
        self.get_object(key, range, if_match, None).await
    }

    /// Fetches an object unless its ETag still is `etag` (a conditional GET: `If-None-Match`).
    ///
    /// # Errors
    /// [`StorageError::NotModified`] when unchanged; otherwise as [`Storage::get`].
    pub async fn get_if_none_match(&self, key: &str, etag: Option<&str>) -> Result<Object, StorageError> {
        self.get_object(key, None, None, etag).await
    }

    /// One GetObject with its optional range and conditions; the body stays streaming.
    async fn get_object(
        &self,
        key: &str,
        range: Option<String>,
        if_match: Option<&str>,
        if_none_match: Option<&str>,
    ) -> Result<Object, StorageError> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .set_if_match(if_match.map(str::to_string))
            .set_if_none_match(if_none_match.map(str::to_string));
        let out = self
            .timed("GetObject", req.send())
            .await
            .map_err(|e| self.missing.classify(e))?;
        let meta = self.served(object_meta!(
            out,
            out.content_length().and_then(|n| u64::try_from(n).ok())
        ));
        Ok(Object {
            meta,
            content_range: out.content_range().map(str::to_string),
            body: out.body.into_inner(),
        })
    }

    /// Deletes an object (absent already is not an error, as in S3).
    ///
    /// # Errors
    /// Backend trouble.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let req = self.client.delete_object().bucket(&self.bucket).key(key);
        self.timed("DeleteObject", req.send()).await.map(|_| ())
    }

    /// One page (up to 1000 entries) of the keys and sub-"directories" directly under `prefix`.
    ///
    /// # Errors
    /// Backend trouble; [`StorageError::Denied`] when the credentials lack s3:ListBucket.
    pub async fn list(&self, prefix: &str, token: Option<String>) -> Result<Listing, StorageError> {
        let req = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .max_keys(1000)
            .set_continuation_token(token);
        let out = self.timed("ListObjectsV2", req.send()).await?;
        Ok(Listing {
            directories: out
                .common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_string))
                .collect(),
            objects: out
                .contents()
                .iter()
                .filter_map(|o| {
                    Some(ListedObject {
                        key: o.key()?.to_string(),
                        size: o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                        last_modified: o.last_modified().and_then(|t| SystemTime::try_from(*t).ok()),
                        etag: o.e_tag().map(str::to_string),
                    })
                })
                .collect(),
            next: out.next_continuation_token().map(str::to_string),
        })
    }

    /// Checks that the bucket exists and our credentials and certificate are accepted.
    ///
    /// This is the health probe: it goes to the backend even while the circuit is open, and
    /// what it finds closes or keeps open the circuit.
    ///
    /// # Errors
    /// The reason the bucket cannot be reached; a missing bucket is [`StorageError::NoSuchBucket`].
    pub async fn head_bucket(&self) -> Result<(), StorageError> {
        let result = self
            .unguarded("HeadBucket", self.client.head_bucket().bucket(&self.bucket).send())
            .await;
        self.record(&result);
        match result {
            Ok(_) => Ok(()),
            Err(StorageError::NotFound) => Err(StorageError::NoSuchBucket {
                code: "NoSuchBucket".into(),
            }),
            Err(e) => Err(e),
        }
    }

    /// What the backend answers for `key`, which should not exist: `Some(false)` for 404,
    /// `Some(true)` for 403 `AccessDenied` (the credentials are good, the policy has no
    /// s3:ListBucket), `None` when it exists. Like [`Storage::head_bucket`], a probe: it passes
    /// an open circuit and reports to it.
    ///
    /// # Errors
    /// Any other answer: bad credentials name their code here (a GET error has a body).
    pub async fn probe_missing(&self, key: &str) -> Result<Option<bool>, StorageError> {
        let call = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range("bytes=0-0")
            .send();
        let result = self.unguarded("GetObject", call).await;
        self.record(&result);
        match result {
            Ok(_) | Err(StorageError::Backend { status: 416, .. }) => Ok(None),
            Err(StorageError::NotFound) => Ok(Some(false)),
            Err(StorageError::Denied { code, .. }) if code == "AccessDenied" => Ok(Some(true)),
            Err(e) => Err(e),
        }
    }

    /// Creates the bucket; `Ok(false)` when it already exists and is ours.
    ///
    /// # Errors
    /// Backend trouble, or a bucket name owned by someone else.
    pub async fn create_bucket(&self) -> Result<bool, StorageError> {
        match self
            .timed("CreateBucket", self.client.create_bucket().bucket(&self.bucket).send())
            .await
        {
            Ok(_) => Ok(true),
            Err(StorageError::Backend { code, .. } | StorageError::Denied { code, .. })
                if code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Uploads an object in one atomic PUT (the object is replaced whole or not at all).
    ///
    /// # Errors
    /// Backend trouble, or `PreconditionFailed` (see [`PutOptions::only_if_absent`]).
    pub async fn put(&self, key: &str, body: Bytes, opts: &PutOptions<'_>) -> Result<(), StorageError> {
        let expires = match opts.stored.expires.as_deref() {
            Some(date) => Some(
                httpdate::parse_http_date(date)
                    .map_err(|_| StorageError::Internal(format!("Expires {date:?} is not an HTTP date")))?,
            ),
            None => None,
        };
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(opts.content_type)
            .set_cache_control(opts.cache_control.map(str::to_string))
            .set_content_encoding(opts.stored.content_encoding.clone())
            .set_content_disposition(opts.stored.content_disposition.clone())
            .set_content_language(opts.stored.content_language.clone())
            .set_expires(expires.map(aws_smithy_types::DateTime::from))
            .content_md5(base64_md5(&body))
            .body(ByteStream::from(body));
        for (k, v) in opts.metadata {
            req = req.metadata(*k, v);
        }
        if opts.only_if_absent {
            req = req.if_none_match("*");
        }
        self.timed("PutObject", req.send()).await.map(|_| ())
    }

    /// Runs one SDK call through the circuit breaker, recording its duration and outcome.
    pub(super) async fn timed<T, E>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, StorageError>
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        // A place among the calls in flight first, then the circuit's word (a trial is only
        // started when it can be sent).
        let _in_flight = match &self.circuit {
            None => None,
            Some(circuit) => match circuit.enter().and_then(|place| Ok((place, circuit.admit()?))) {
                Ok((place, admission)) => {
                    if admission == Admission::Trial {
                        tracing::info!(operation, "circuit half-open: trying the backend");
                    }
                    Some(place)
                }
                Err(e) => {
                    self.metrics.observe_s3(operation, e.kind(), std::time::Duration::ZERO);
                    return Err(e);
                }
            },
        };
        let result = self.unguarded(operation, call).await;
        self.record(&result);
        result
    }

    /// Tells the circuit breaker (if any) what a call found.
    fn record<T>(&self, result: &Result<T, StorageError>) {
        if let Some(circuit) = &self.circuit {
            circuit.record(Health::of(result));
        }
    }

    /// Runs one SDK call, recording its duration and outcome, without the circuit breaker.
    pub(super) async fn unguarded<T, E>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, StorageError>
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let start = Instant::now();
        let result = call.await.map_err(classify);
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        self.metrics.observe_s3(operation, outcome, start.elapsed());
        result
    }
}

pub(super) fn sorted(m: Option<&std::collections::HashMap<String, String>>) -> Vec<(String, String)> {
    let mut v: Vec<_> = m
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    v.sort();
    v
}

fn base64_md5(body: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}
