//! What the gateway knows of an object besides its bytes: its validators, type and the
//! representation headers stored with it.
//!
//! The HTTP rules, the cache and the handlers read these; only the backend makes them, from what
//! S3 answered, so none of them needs to know the S3 client.

use std::time::SystemTime;

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
