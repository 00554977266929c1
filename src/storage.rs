//! The S3 bucket: aws-sdk-s3 over the mTLS client, and honest error classification.
//!
//! Every backend call goes through [`Storage`], which times it, counts it by operation and
//! outcome, and turns the SDK's error into a [`StorageError`] that says what happened (missing
//! key, credentials refused, TLS refused, unreachable, timeout) without any secret in it.
//! Object bodies are returned as the SDK's streaming body: nothing is read into memory here.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, IdentityCache, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider, StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use bytes::Bytes;

use crate::backend::{BackendConfig, CredentialSource};
use crate::circuit::{Admission, Circuit, Health};
use crate::credentials::CertificateCredentials;
use crate::error::{StorageError, error_chain};
use crate::metrics::Metrics;
use crate::missing::MissingKeys;
use crate::s3http::{MtlsHttpClient, find_tls_error, is_backend_timeout};

/// Response metadata of an object, as S3 reports it.
#[derive(Clone, Debug, Default)]
pub struct ObjectMeta {
    /// Size in bytes.
    pub content_length: Option<u64>,
    /// `Content-Type` stored with the object.
    pub content_type: Option<String>,
    /// Entity tag, quoted as S3 sends it.
    pub etag: Option<String>,
    /// Last modification time.
    pub last_modified: Option<SystemTime>,
    /// `Cache-Control` stored with the object.
    pub cache_control: Option<String>,
    /// The other representation headers stored with the object and sent with it as stored:
    /// `Content-Encoding` (a precompressed asset), `Content-Disposition`, `Content-Language`
    /// and `Expires`.
    pub stored: StoredHeaders,
    /// User metadata (`x-amz-meta-*`), lowercase names without the prefix.
    pub metadata: Vec<(String, String)>,
}

/// Representation headers S3 keeps with an object and the gateway passes through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredHeaders {
    /// `Content-Encoding`, e.g. `gzip` for a precompressed asset.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`, e.g. `attachment; filename="a.pdf"`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Expires`, as the backend sent it.
    pub expires: Option<String>,
}

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

/// How many attempts the SDK makes per call.
#[derive(Clone, Copy, Debug)]
pub enum Retries {
    /// One retry of transient failures (a stale pooled connection), for serving requests.
    Serve,
    /// No SDK retries: the caller runs its own retry loop with a deadline (`seed`).
    CallerManaged,
}

/// Renews temporary credentials the backend refuses as `InvalidAccessKeyId` (how MinIO
/// answers expired ones) and asks for the call to be retried, once (the serving retry policy
/// allows two attempts).
#[derive(Debug)]
struct RenewOnInvalidKey(CertificateCredentials);

impl aws_smithy_runtime_api::client::retries::classifiers::ClassifyRetry for RenewOnInvalidKey {
    fn classify_retry(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::InterceptorContext,
    ) -> aws_smithy_runtime_api::client::retries::classifiers::RetryAction {
        use aws_smithy_runtime_api::client::retries::classifiers::RetryAction;
        let Some(Err(err)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let Some(op) = err.as_operation_error() else {
            return RetryAction::NoActionIndicated;
        };
        // The operations' error types, each able to say its code.
        macro_rules! code_of {
            ($($t:ty),*) => { None$(.or_else(|| op.downcast_ref::<$t>().and_then(|e| e.code())))* };
        }
        let code: Option<&str> = code_of!(
            aws_sdk_s3::operation::get_object::GetObjectError,
            aws_sdk_s3::operation::head_object::HeadObjectError,
            aws_sdk_s3::operation::head_bucket::HeadBucketError,
            aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error,
            aws_sdk_s3::operation::put_object::PutObjectError
        );
        if code == Some("InvalidAccessKeyId") {
            tracing::info!("the backend refused the temporary credentials: renewing them and trying again");
            self.0.forget();
            RetryAction::transient_error()
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "renew temporary credentials on InvalidAccessKeyId"
    }
}

/// The key named in the SDK call that carries a MinIO extension the SDK lacks
/// (`ListenBucketNotification`, `add-canned-policy`); the request's target is rewritten before
/// it is signed, so this name is never sent.
const PLACEHOLDER_KEY: &str = "gateway-listen";

/// What `ListenBucketNotification` gave.
#[derive(Debug)]
pub enum Listen {
    /// The event stream: one JSON record per line, and `{"Records":null}` keep-alives.
    Stream(ByteStream),
    /// The backend does not offer the API (it is MinIO's own), with what it answered.
    NotOffered(String),
}

/// A handle on the configured bucket.
#[derive(Clone, Debug)]
pub struct Storage {
    client: Client,
    bucket: String,
    metrics: Arc<Metrics>,
    /// The breaker every call passes; `None` for callers with their own retry loop (`seed`).
    circuit: Option<Arc<Circuit>>,
    /// Whether an `AccessDenied` on an object means it is missing.
    missing: Arc<MissingKeys>,
    /// The temporary credentials, with `--credentials sts-certificate`.
    sts: Option<CertificateCredentials>,
}

impl Storage {
    /// Builds the S3 client for `cfg`. No connection is made until the first call.
    pub fn new(cfg: &BackendConfig, metrics: Arc<Metrics>, retries: Retries) -> Self {
        let http = MtlsHttpClient::new(cfg.tls.config.clone(), cfg.connect_timeout, cfg.timeout);
        let retry = match retries {
            Retries::Serve => RetryConfig::standard().with_max_attempts(2),
            Retries::CallerManaged => RetryConfig::disabled(),
        };
        let mut builder = aws_sdk_s3::Config::builder();
        let sts = match &cfg.credentials {
            CredentialSource::Static { access_key, secret_key } => {
                builder.set_credentials_provider(Some(SharedCredentialsProvider::new(Credentials::new(
                    access_key,
                    secret_key.expose(),
                    None,
                    None,
                    "gateway-static",
                ))));
                None
            }
            CredentialSource::StsCertificate { duration } => {
                let sts =
                    CertificateCredentials::new(&cfg.endpoint, cfg.tls.config.clone(), *duration, metrics.clone());
                builder.set_credentials_provider(Some(SharedCredentialsProvider::new(sts.clone())));
                // The provider keeps and renews the credentials itself (ahead of expiry, one
                // task); the SDK asks it on each request.
                builder.set_identity_cache(IdentityCache::no_cache());
                // Credentials the backend no longer takes (it restarted, or a clock is off)
                // are renewed and the call retried once.
                builder.push_retry_classifier(
                    aws_smithy_runtime_api::client::retries::classifiers::SharedRetryClassifier::new(
                        RenewOnInvalidKey(sts.clone()),
                    ),
                );
                Some(sts)
            }
            CredentialSource::Chain => {
                let chain = crate::credentials::Chain::new(http.clone(), &cfg.region);
                builder.set_credentials_provider(Some(SharedCredentialsProvider::new(chain)));
                None
            }
        };
        let conf = builder
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .endpoint_url(&cfg.endpoint)
            .force_path_style(cfg.path_style)
            .http_client(http)
            .retry_config(retry)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(cfg.connect_timeout)
                    .read_timeout(cfg.timeout)
                    // The whole call, retries included, up to the response head: one connect
                    // and one wait for headers (a refused connection is retried at once).
                    .operation_timeout(cfg.connect_timeout + cfg.timeout)
                    .build(),
            )
            // A body that stops flowing from the backend (less than 1 byte/s for this long,
            // not counting time the client spends not reading) fails instead of hanging.
            .stalled_stream_protection(
                StalledStreamProtectionConfig::enabled()
                    .grace_period(cfg.timeout)
                    .build(),
            )
            // MinIO before 2025 rejects the SDK's default CRC32 trailers; checksums are sent
            // and checked only where S3 requires them.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Self {
            client: Client::from_conf(conf),
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
        let meta = object_meta!(out, out.content_length().and_then(|n| u64::try_from(n).ok()));
        Ok(Object {
            meta,
            content_range: out.content_range().map(str::to_string),
            body: out.body.into_inner(),
        })
    }

    /// Opens MinIO's `ListenBucketNotification` stream for objects created and removed under
    /// `prefix`, with a keep-alive record every `ping`: `GET /{bucket}?events=...&prefix=P&ping=N`
    /// signed like any S3 call (MinIO documents it with its Go client's
    /// `ListenBucketNotification`; the server side is `cmd/listen-notification-handlers.go`).
    /// The SDK has no such operation, so a GetObject is sent with its target rewritten before
    /// signing, and its body, which the SDK streams without parsing, is the event stream.
    ///
    /// # Errors
    /// Backend trouble, as for any call; a backend without the API is [`Listen::NotOffered`].
    pub async fn listen(&self, prefix: &str, ping: std::time::Duration) -> Result<Listen, StorageError> {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let query = format!(
            "events={}&events={}&prefix={}&ping={}",
            enc("s3:ObjectCreated:*"),
            enc("s3:ObjectRemoved:*"),
            enc(prefix),
            ping.as_secs().max(1)
        );
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(PLACEHOLDER_KEY)
            .customize()
            // The stream is quiet between events; the caller watches its keep-alives instead.
            .config_override(
                aws_sdk_s3::config::Builder::default()
                    .stalled_stream_protection(StalledStreamProtectionConfig::disabled()),
            )
            .mutate_request(move |req| {
                // `/{bucket}/<placeholder>?x-id=GetObject` (or `/<placeholder>` with virtual
                // hosts) becomes `/{bucket}?events=...`.
                let uri = req.uri().to_string();
                let marker = format!("/{PLACEHOLDER_KEY}");
                if let Some(at) = uri.rfind(&marker) {
                    let base = &uri[..at];
                    let has_path = base.split_once("://").is_some_and(|(_, rest)| rest.contains('/'));
                    let slash = if has_path { "" } else { "/" };
                    let _ = req.set_uri(format!("{base}{slash}?{query}"));
                }
            });
        match self.unguarded("ListenBucketNotification", req.send()).await {
            Ok(out) => {
                let content_type = out.content_type().unwrap_or("").to_ascii_lowercase();
                if content_type.starts_with("text/event-stream") {
                    Ok(Listen::Stream(out.body))
                } else {
                    // Garage and AWS take the request for a ListObjects and answer XML.
                    Ok(Listen::NotOffered(format!(
                        "the backend answered {content_type:?}, not an event stream"
                    )))
                }
            }
            Err(StorageError::Backend { status, code, .. }) if matches!(status, 400 | 405 | 501) => {
                Ok(Listen::NotOffered(format!("the backend answered {status} {code}")))
            }
            Err(e) => Err(e),
        }
    }

    /// Creates or replaces the MinIO canned policy `name` with `document` (IAM policy JSON):
    /// MinIO's admin API `PUT /minio/admin/v3/add-canned-policy?name=NAME`, the document as the
    /// body, signed like an S3 call (madmin-go's `AddCannedPolicy`). The SDK has no such
    /// operation, so a PutObject is sent with its target rewritten before signing, as
    /// [`Storage::listen`] does.
    ///
    /// # Errors
    /// Backend trouble, as for any call; [`StorageError::Denied`] without admin rights.
    pub async fn add_canned_policy(&self, name: &str, document: Bytes) -> Result<(), StorageError> {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        let target = format!(
            "/minio/admin/v3/add-canned-policy?name={}",
            utf8_percent_encode(name, NON_ALPHANUMERIC)
        );
        let bucket = self.bucket.clone();
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(PLACEHOLDER_KEY)
            .content_type("application/json")
            .body(ByteStream::from(document))
            .customize()
            .mutate_request(move |req| {
                // `https://host/{bucket}/<placeholder>?x-id=PutObject` (or
                // `https://{bucket}.host/<placeholder>...`) becomes `https://host/minio/admin/...`.
                let uri = req.uri().to_string();
                if let Some((scheme, rest)) = uri.split_once("://") {
                    let authority = rest.split('/').next().unwrap_or(rest);
                    let authority = authority.strip_prefix(&format!("{bucket}.")).unwrap_or(authority);
                    let _ = req.set_uri(format!("{scheme}://{authority}{target}"));
                }
            });
        self.timed("AddCannedPolicy", req.send()).await.map(|_| ())
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
                    })
                })
                .collect(),
            next: out.next_continuation_token().map(str::to_string),
        })
    }

    /// An object's metadata, learnt from a one-byte ranged GET rather than a HEAD, because a
    /// GET error carries the backend's reason (`SignatureDoesNotMatch`, `NoSuchBucket`) where a
    /// HEAD error has only a status. Used by `seed`, whose errors must name their cause.
    ///
    /// # Errors
    /// As [`Storage::get`]; a missing bucket is [`StorageError::NoSuchBucket`].
    pub async fn stat(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let result = self
            .timed(
                "GetObject",
                self.client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .range("bytes=0-0")
                    .send(),
            )
            .await;
        match result {
            Ok(out) => {
                // Content-Range is `bytes 0-0/TOTAL`.
                let total = out
                    .content_range()
                    .and_then(|r| r.rsplit('/').next())
                    .and_then(|n| n.parse().ok());
                Ok(object_meta!(out, total))
            }
            // An empty object has no byte 0.
            Err(StorageError::Backend { status: 416, .. }) => self.head(key).await,
            Err(e) => Err(e),
        }
    }

    /// An object's metadata, without its body.
    ///
    /// # Errors
    /// As [`Storage::get`].
    pub async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let out = self
            .timed(
                "HeadObject",
                self.client.head_object().bucket(&self.bucket).key(key).send(),
            )
            .await
            .map_err(|e| self.missing.classify(e))?;
        Ok(object_meta!(
            out,
            out.content_length().and_then(|n| u64::try_from(n).ok())
        ))
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
    async fn timed<T, E>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, StorageError>
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        if let Some(circuit) = &self.circuit {
            match circuit.admit() {
                Ok(Admission::Pass) => {}
                Ok(Admission::Trial) => tracing::info!(operation, "circuit half-open: trying the backend"),
                Err(e) => {
                    self.metrics.observe_s3(operation, e.kind(), std::time::Duration::ZERO);
                    return Err(e);
                }
            }
        }
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
    async fn unguarded<T, E>(
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

fn sorted(m: Option<&std::collections::HashMap<String, String>>) -> Vec<(String, String)> {
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

/// Turns an SDK error into what happened, in words an operator can act on.
pub fn classify<E>(err: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let context = || error_chain(&err);
    if let Some(refusal) = sts_refusal(&err) {
        // The STS refused the certificate: a credentials problem, not an unreachable backend.
        return StorageError::Denied {
            code: crate::error::STS_REFUSED.into(),
            message: refusal,
        };
    }
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("").to_string();
            let message = service.err().message().unwrap_or("").to_string();
            match status {
                404 if code == "NoSuchBucket" => StorageError::NoSuchBucket { code },
                404 => StorageError::NotFound,
                400 if CLIENT_CAUSED.contains(&code.as_str()) => StorageError::BadKey { code, message },
                304 => StorageError::NotModified,
                412 => StorageError::PreconditionFailed,
                401 | 403 => StorageError::Denied {
                    code: if code.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        code
                    },
                    message,
                },
                _ => StorageError::Backend { status, code, message },
            }
        }
        SdkError::DispatchFailure(dispatch) => {
            if let Some(tls) = find_tls_error(&err) {
                StorageError::Tls(tls.to_string())
            } else if dispatch.is_timeout() || is_backend_timeout(&err) {
                StorageError::Timeout(context())
            } else {
                StorageError::Unreachable(hint_closed(context()))
            }
        }
        SdkError::TimeoutError(_) => StorageError::Timeout(context()),
        SdkError::ResponseError(_) => StorageError::BadResponse(context()),
        SdkError::ConstructionFailure(_) => StorageError::Internal(context()),
        _ => StorageError::BadResponse(context()),
    }
}

/// The STS's refusal of the client certificate, when that is why a call could not be made
/// (the credentials provider failed with [`crate::credentials::StsError::Refused`]).
fn sts_refusal<E>(err: &SdkError<E, HttpResponse>) -> Option<String>
where
    E: StdError + Send + Sync + 'static,
{
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(refused @ crate::credentials::StsError::Refused { .. }) =
            e.downcast_ref::<crate::credentials::StsError>()
        {
            return Some(refused.to_string());
        }
        source = e.source();
    }
    None
}

/// S3 and MinIO error codes of a 400 that the key itself caused (MinIO's names are the
/// `X-Minio…` ones): the gateway's client sent a key the backend cannot store.
const CLIENT_CAUSED: &[&str] = &[
    "KeyTooLongError",
    "InvalidObjectName",
    "XMinioInvalidObjectName",
    "InvalidURI",
];

/// A connection closed before any answer can be a backend restarting, but when it goes on it is
/// usually a TLS terminator in front of the backend (nginx with `ssl_verify_client on`, as in
/// the Helm chart's MinIO pod) refusing the client certificate: it completes the handshake,
/// then closes without a TLS alert, so rustls has no TLS error to report. Say so in the log.
fn hint_closed(message: String) -> String {
    if message.contains("connection closed before message completed") {
        format!(
            "{message} (if this persists: a TLS proxy in front of the backend may be refusing the client \
             certificate; check --client-cert against the CA the backend trusts)"
        )
    } else {
        message
    }
}
