//! Ways the embedded backend misbehaves on purpose, switched at run time by tests: what some
//! S3 implementations and the proxies in front of them really do. Its own module, so that the
//! backend ([`crate`]) and its MinIO extensions ([`crate::events`]) both read
//! the switches without importing each other.

use std::sync::atomic::{AtomicBool, Ordering};

/// Ways the embedded backend can misbehave, switched at run time by tests: what some S3
/// implementations and proxies in front of them really do.
#[derive(Debug, Default)]
pub struct Faults {
    ignore_range: AtomicBool,
    without_list_bucket: AtomicBool,
    without_listen: AtomicBool,
    listen_denied: AtomicBool,
    keep_aws_chunked: AtomicBool,
}

impl Faults {
    /// Ignore `Range` on GetObject: answer 200 with the whole object.
    pub fn ignore_range(&self, on: bool) {
        self.ignore_range.store(on, Ordering::Relaxed);
    }

    /// Answer as AWS S3 does for a caller whose policy grants `s3:GetObject` but not
    /// `s3:ListBucket`: a missing key is `403 AccessDenied` instead of `404 NoSuchKey` (so
    /// that a caller cannot learn which keys exist), and HeadBucket and ListObjectsV2 are
    /// `403 AccessDenied` ("If you don't have the s3:ListBucket permission, Amazon S3 returns
    /// an HTTP status code 403 (access denied) error", GetObject API reference). MinIO does
    /// not: it answers such a caller `404 NoSuchKey` (it gives 403 for a missing key only to
    /// anonymous requests), which is what this backend does with the switch off.
    pub fn without_list_bucket(&self, on: bool) {
        self.without_list_bucket.store(on, Ordering::Relaxed);
    }

    /// Answer `ListenBucketNotification` as backends without it do (Garage, AWS S3): the
    /// request is taken for a ListObjects, and the answer is its XML.
    pub fn without_listen(&self, on: bool) {
        self.without_listen.store(on, Ordering::Relaxed);
    }

    /// Refuse `ListenBucketNotification` with `AccessDenied`, as MinIO does for credentials
    /// whose policy lacks `s3:ListenBucketNotification`.
    pub fn deny_listen(&self, on: bool) {
        self.listen_denied.store(on, Ordering::Relaxed);
    }

    /// Keep `aws-chunked` in the stored `Content-Encoding` of uploads, as some S3
    /// implementations and older servers have done (MinIO removes it).
    pub fn keep_aws_chunked(&self, on: bool) {
        self.keep_aws_chunked.store(on, Ordering::Relaxed);
    }

    /// Whether uploads keep `aws-chunked` in their stored `Content-Encoding`.
    pub(crate) fn keeps_aws_chunked(&self) -> bool {
        self.keep_aws_chunked.load(Ordering::Relaxed)
    }

    /// Whether `ListenBucketNotification` is refused.
    pub(crate) fn denies_listen(&self) -> bool {
        self.listen_denied.load(Ordering::Relaxed)
    }

    /// Whether `ListenBucketNotification` is to be answered as a ListObjects.
    pub(crate) fn refuses_listen(&self) -> bool {
        self.without_listen.load(Ordering::Relaxed)
    }

    /// Whether GetObject ignores `Range`.
    pub(crate) fn ignores_range(&self) -> bool {
        self.ignore_range.load(Ordering::Relaxed)
    }

    pub(crate) fn denies_listing(&self) -> bool {
        self.without_list_bucket.load(Ordering::Relaxed)
    }
}
