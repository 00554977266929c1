//! Readiness: whether this gateway should receive traffic, and the probe that decides it.
//!
//! The probe is a signed HeadBucket through the mTLS client, bounded by [`PROBE_TIMEOUT`]; its
//! result goes to the `gateway_ready` gauge. Shutdown makes readiness fail at once, so load
//! balancers stop sending traffic before the listeners close.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::StorageError;
use crate::metrics::Metrics;
use crate::storage::Storage;

/// Upper bound on how long a readiness probe waits for the backend.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The readiness of one gateway.
#[derive(Debug)]
pub struct Readiness {
    storage: Storage,
    metrics: Arc<Metrics>,
    /// Set when shutdown begins.
    draining: AtomicBool,
}

impl Readiness {
    /// Readiness probed through `storage`, recorded in `metrics`.
    pub fn new(storage: Storage, metrics: Arc<Metrics>) -> Self {
        Self {
            storage,
            metrics,
            draining: AtomicBool::new(false),
        }
    }

    /// Whether the last probe reached the bucket (kept in the `gateway_ready` gauge); decides
    /// 502 vs 503 for an unreachable backend.
    pub fn is_ready(&self) -> bool {
        self.metrics.ready.get() == 1
    }

    /// Marks the gateway as shutting down.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Probes the bucket (HeadBucket through the mTLS client) and records the result.
    ///
    /// A bucket that does not exist yet still counts as ready: the backend answered a signed
    /// request over mTLS, so this pod's endpoint, certificates and keys are right, and the
    /// missing bucket is shared by every pod alike. Kubernetes installs depend on it: the
    /// chart's seed job creates the bucket after `helm install --wait` has waited for ready pods.
    /// Object requests answer 502 naming `NoSuchBucket` in the log until the bucket exists.
    ///
    /// # Errors
    /// Why the backend cannot be used; a probe that takes too long is a timeout.
    pub async fn probe(&self) -> Result<(), StorageError> {
        let bucket = self.storage.bucket();
        let result = match tokio::time::timeout(PROBE_TIMEOUT, self.storage.head_bucket()).await {
            Ok(Err(StorageError::NoSuchBucket { .. })) => {
                tracing::warn!(
                    bucket,
                    "bucket does not exist yet: ready, but objects answer 502 until it is created (gateway seed)"
                );
                Ok(())
            }
            Ok(r) => r,
            Err(_) => Err(StorageError::Timeout(format!(
                "HeadBucket took longer than {PROBE_TIMEOUT:?}"
            ))),
        };
        let ok = result.is_ok();
        if self.is_ready() != ok || !ok {
            match &result {
                Ok(()) => tracing::info!(bucket, "bucket reachable: ready"),
                Err(e) => tracing::warn!(bucket, error = %e, "bucket not reachable: not ready"),
            }
        }
        self.metrics.ready.set(i64::from(ok));
        result
    }
}
