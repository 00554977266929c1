//! What is known of an object without its body: HeadObject (a bare 403 told apart from a
//! missing key), a one-byte GET that names its error, and the stored headers as they may be
//! served (never `aws-chunked`).

use std::time::SystemTime;

use crate::backend::storage::{Storage, object_meta, sorted};
use crate::error::StorageError;
use crate::meta::{ObjectMeta, StoredHeaders};

impl Storage {
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
                Ok(self.served(object_meta!(out, total)))
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
        match self.head_once(key).await {
            // A HEAD's 403 has no body to say why: `AccessDenied` for a missing key under a
            // GetObject-only policy, or credentials the backend no longer takes. Where a 403
            // may mean "missing", a GET of one byte, whose error names its code (and whose
            // refused credentials are renewed), tells them apart.
            Err(StorageError::Denied { code, message })
                if matches!(code.as_str(), "HTTP 403" | "Forbidden") && self.missing.denied_means_missing() =>
            {
                match self.get_range(key, Some("bytes=0-0".into()), None).await {
                    Ok(_) | Err(StorageError::Backend { status: 416, .. }) => {
                        self.head_once(key).await.map_err(|e| match e {
                            StorageError::Denied { .. } => StorageError::Denied {
                                code: code.clone(),
                                message: message.clone(),
                            },
                            e => e,
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(self.missing.classify(e)),
            Ok(meta) => Ok(meta),
        }
    }

    /// One HeadObject, its error as the backend gave it.
    async fn head_once(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let out = self
            .timed(
                "HeadObject",
                self.client.head_object().bucket(&self.bucket).key(key).send(),
            )
            .await?;
        Ok(self.served(object_meta!(
            out,
            out.content_length().and_then(|n| u64::try_from(n).ok())
        )))
    }

    /// `meta` as it may be served: without `aws-chunked` in its `Content-Encoding`.
    ///
    /// `aws-chunked` is how today's SDKs upload (boto3 1.36+, AWS CLI 2.23+, the Rust, Go and JS
    /// SDKs send checksums in its trailers by default); it belongs to the upload, never to the
    /// object, and S3 removes it, but some stores keep it, and a browser cannot decode it. The
    /// other codings stay (`gzip,aws-chunked` is served as `gzip`); an object whose only coding
    /// was `aws-chunked` is uncoded, and compressed like any other. Each one is counted
    /// (`gateway_s3_aws_chunked_removed_total`), so operators can see a store that keeps it.
    pub(super) fn served(&self, mut meta: ObjectMeta) -> ObjectMeta {
        let aws_chunked = |c: &str| c.trim().eq_ignore_ascii_case("aws-chunked");
        if let Some(coding) = &meta.stored.content_encoding
            && coding.split(',').any(aws_chunked)
        {
            let kept: Vec<&str> = coding
                .split(',')
                .filter(|c| !aws_chunked(c))
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            self.metrics.s3_aws_chunked_removed.inc();
            meta.stored.content_encoding = (!kept.is_empty()).then(|| kept.join(", "));
        }
        meta
    }
}
