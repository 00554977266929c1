//! What the backend answers for a key that does not exist, and so what counts as "missing".
//!
//! AWS S3 answers `404 NoSuchKey` only to a caller allowed to list the bucket
//! (`s3:ListBucket`); to a caller with `s3:GetObject` alone it answers `403 AccessDenied`, so
//! that the caller cannot learn which keys exist. A least-privilege gateway there sees 403 for
//! every missing path. (MinIO answers a signed request `404 NoSuchKey` whatever its policy:
//! its 403 for a missing key is for anonymous requests only, cmd/object-handlers.go; and its
//! HeadBucket takes `s3:HeadBucket` or `s3:ListBucket`, cmd/bucket-handlers.go.) Taken as a backend failure, that is a 502 for every typo and the
//! error document and SPA fallback never apply; taken as a miss, it is what the operator
//! means. `--missing-object-status` says which: `404` (only 404 is a miss), `403` (an
//! `AccessDenied` on GetObject/HeadObject is a miss too), or `auto`: the readiness probe learns
//! it from the backend (AWS allows HeadBucket only with `s3:ListBucket`; when it is refused, a
//! GetObject of a key that does not exist tells `AccessDenied` from bad credentials) and the
//! decision is logged when it is made or changes.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::cli::MissingObjectStatus;
use crate::error::StorageError;

const UNKNOWN: u8 = 0;
const NOT_FOUND: u8 = 1;
const DENIED: u8 = 2;

/// The missing-key policy of one gateway.
#[derive(Debug)]
pub struct MissingKeys {
    configured: MissingObjectStatus,
    /// What the backend was found to answer (`auto`): UNKNOWN, NOT_FOUND or DENIED.
    learnt: AtomicU8,
}

impl Default for MissingKeys {
    /// Only 404 is a miss (what `seed` needs: it must never take a refusal for absence).
    fn default() -> Self {
        Self::new(MissingObjectStatus::NotFound)
    }
}

impl MissingKeys {
    /// The policy `configured` by the operator.
    pub fn new(configured: MissingObjectStatus) -> Self {
        Self {
            configured,
            learnt: AtomicU8::new(UNKNOWN),
        }
    }

    /// Whether the backend is known to answer `AccessDenied` for missing keys and the policy
    /// takes that as a miss.
    pub fn denied_means_missing(&self) -> bool {
        match self.configured {
            MissingObjectStatus::Forbidden => true,
            MissingObjectStatus::NotFound => false,
            MissingObjectStatus::Auto => self.learnt.load(Ordering::Relaxed) == DENIED,
        }
    }

    /// An error of GetObject/HeadObject, with an `AccessDenied` turned into a miss when the
    /// policy says so.
    pub fn classify(&self, e: StorageError) -> StorageError {
        match e {
            StorageError::Denied { ref code, .. } if is_access_denied(code) && self.denied_means_missing() => {
                StorageError::NotFound
            }
            e => e,
        }
    }

    /// Records what the backend answers for a missing key (`denied`: 403 AccessDenied) and
    /// logs the decision the first time and whenever it changes.
    pub fn learn(&self, denied: bool) {
        let now = if denied { DENIED } else { NOT_FOUND };
        if self.learnt.swap(now, Ordering::Relaxed) == now {
            return;
        }
        match (self.configured, denied) {
            (MissingObjectStatus::NotFound, true) => tracing::warn!(
                "the backend answers 403 AccessDenied for missing keys (no s3:ListBucket): with \
                 --missing-object-status 404 every missing path is a 502; grant s3:ListBucket or use auto"
            ),
            (_, true) => tracing::info!(
                "the backend answers 403 AccessDenied for missing keys (no s3:ListBucket): \
                 answering them as missing (404, error document, SPA fallback)"
            ),
            (MissingObjectStatus::Forbidden, false) => tracing::warn!(
                "the backend answers 404 for missing keys, yet --missing-object-status 403 also takes \
                 AccessDenied as missing: a key the policy hides is answered 404, not 502"
            ),
            (_, false) => tracing::info!("the backend answers 404 for missing keys (s3:ListBucket granted)"),
        }
    }
}

/// Whether an S3 error code says the policy refused the caller (as opposed to credentials or a
/// signature the backend does not accept). A HEAD answer has no body, so no code: `HTTP 403`.
fn is_access_denied(code: &str) -> bool {
    matches!(code, "AccessDenied" | "Forbidden" | "HTTP 403")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(code: &str) -> StorageError {
        StorageError::Denied {
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn only_access_denied_becomes_a_miss() {
        let forbidden = MissingKeys::new(MissingObjectStatus::Forbidden);
        assert!(matches!(
            forbidden.classify(denied("AccessDenied")),
            StorageError::NotFound
        ));
        assert!(matches!(forbidden.classify(denied("HTTP 403")), StorageError::NotFound));
        for code in ["SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken"] {
            assert!(
                matches!(forbidden.classify(denied(code)), StorageError::Denied { .. }),
                "{code}"
            );
        }
        let strict = MissingKeys::new(MissingObjectStatus::NotFound);
        strict.learn(true);
        assert!(matches!(
            strict.classify(denied("AccessDenied")),
            StorageError::Denied { .. }
        ));
    }

    #[test]
    fn auto_follows_what_the_backend_answers() {
        let auto = MissingKeys::new(MissingObjectStatus::Auto);
        assert!(!auto.denied_means_missing(), "nothing learnt yet: a 403 is a failure");
        auto.learn(true);
        assert!(auto.denied_means_missing());
        auto.learn(false);
        assert!(!auto.denied_means_missing());
    }
}
