//! The state shared by every request of one running gateway.
//!
//! Built once from a validated [`ServeConfig`]; handlers get it behind an `Arc`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cache::ObjectCache;
use crate::config::{ServeConfig, Site};
use crate::error::StorageError;
use crate::metrics::Metrics;
use crate::storage::{PROBE_TIMEOUT, Retries, Storage};

/// A running gateway's shared state.
#[derive(Debug)]
pub struct App {
    /// The bucket.
    pub storage: Storage,
    /// Every metric.
    pub metrics: Arc<Metrics>,
    /// How paths map to objects and what responses look like.
    pub site: Site,
    /// The object cache; `None` when turned off.
    pub cache: Option<ObjectCache>,
    /// Whether each request is logged.
    pub access_log: bool,
    /// Set when shutdown begins: readiness fails at once so load balancers stop sending traffic.
    draining: AtomicBool,
}

impl App {
    /// Builds the state; no connection is made yet.
    pub fn new(config: &ServeConfig) -> Arc<Self> {
        let metrics = Arc::new(Metrics::new());
        Arc::new(Self {
            storage: Storage::new(&config.backend, metrics.clone(), Retries::Serve),
            metrics: metrics.clone(),
            site: config.site.clone(),
            cache: ObjectCache::new(config.cache, metrics.clone()),
            access_log: config.access_log,

            draining: AtomicBool::new(false),
        })
    }

    /// Whether the last readiness probe reached the bucket (kept in the `gateway_ready` gauge);
    /// decides 502 vs 503 for an unreachable backend.
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
        let result = match tokio::time::timeout(PROBE_TIMEOUT, self.storage.head_bucket()).await {
            Ok(Err(StorageError::NoSuchBucket { .. })) => {
                tracing::warn!(
                    bucket = self.storage.bucket(),
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
                Ok(()) => tracing::info!(bucket = self.storage.bucket(), "bucket reachable: ready"),
                Err(e) => {
                    tracing::warn!(bucket = self.storage.bucket(), error = %e, "bucket not reachable: not ready")
                }
            }
        }
        self.metrics.ready.set(i64::from(ok));
        result
    }
}
