//! MinIO's own APIs, which aws-sdk-s3 does not have: `ListenBucketNotification` (the bucket's
//! change events) and the admin API's `add-canned-policy`.
//!
//! Each is sent as an SDK call whose target is rewritten before it is signed, so that it is
//! timed, counted, signed and classified like every other call.

use aws_sdk_s3::config::StalledStreamProtectionConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::backend::storage::Storage;
use crate::error::StorageError;

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

impl Storage {
    /// Opens MinIO's `ListenBucketNotification` stream for objects created and removed under
    /// `prefix`, with a keep-alive record every `ping`: `GET /{bucket}?events=...&prefix=P&ping=N`
    /// signed like any S3 call (the server side is `ListenNotificationHandler` in MinIO's
    /// cmd/listen-notification-handlers.go).
    /// The SDK has no such operation, so a GetObject is sent with its target rewritten before
    /// signing, and its body, which the SDK streams without parsing, is the event stream.
    ///
    /// # Errors
    /// Backend trouble, as for any call; a backend without the API is [`Listen::NotOffered`].
    pub(crate) async fn listen(&self, prefix: &str, ping: std::time::Duration) -> Result<Listen, StorageError> {
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
            // MinIO sends the response head only with the first event or keep-alive
            // (`ListenNotificationHandler` does not flush before its loop), so the wait for it is
            // three keep-alive periods, whatever --backend-timeout says: a timeout at or below
            // the ping interval would otherwise end every subscription before it starts.
            .config_override(
                aws_sdk_s3::config::Builder::default()
                    .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
                    .timeout_config(
                        aws_smithy_types::timeout::TimeoutConfig::builder()
                            .read_timeout(ping * 3)
                            .operation_timeout(ping * 4)
                            .build(),
                    ),
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
    pub(crate) async fn add_canned_policy(&self, name: &str, document: Bytes) -> Result<(), StorageError> {
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
}
