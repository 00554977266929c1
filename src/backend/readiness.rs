//! Readiness, and the background probe that keeps the backend's state current.
//!
//! `/readyz` answers 200 once this process has reached the bucket at least once, and 503
//! before that and from the moment shutdown begins. A later backend outage does **not** fail
//! it: the backend is shared by every gateway pod, so failing readiness on it would take every
//! pod out of the Service at once and turn a backend outage into a total one, cached objects
//! included. What readiness proves is this pod's own part: its endpoint, certificate and
//! credentials worked. The backend's current state is the `gateway_backend_up` gauge and a line
//! of the `/readyz` body, kept current by one background probe (a signed HeadBucket through the
//! mTLS client, at most one per `--backend-probe-interval` however often `/readyz` is asked).
//!
//! HeadBucket needs `s3:ListBucket`. When it is refused, the probe asks for a key that does not
//! exist: `AccessDenied` there means the credentials are good and the policy grants objects
//! only (the bucket is reached, and missing keys will be 403: [`crate::backend::missing`] learns it);
//! any other refusal names its cause (`InvalidAccessKeyId`, `SignatureDoesNotMatch`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::backend::storage::Storage;
use crate::error::StorageError;
use crate::metrics::Metrics;

/// Upper bound on how long one probe waits for the backend.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The readiness of one gateway.
#[derive(Debug)]
pub struct Readiness {
    storage: Storage,
    /// A key under the served prefix that should not exist, asked for when HeadBucket is refused.
    absent_key: String,
    metrics: Arc<Metrics>,
    /// Set by the first probe that reaches the bucket; never cleared.
    reached: AtomicBool,
    /// Set when shutdown begins.
    draining: AtomicBool,
    /// The last probe's failure, for the `/readyz` body (its class only).
    last_error: std::sync::Mutex<Option<String>>,
}

impl Readiness {
    /// Readiness probed through `storage`, recorded in `metrics`. `storage` carries the
    /// circuit breaker, which keeps `gateway_backend_up` from every call and every probe.
    /// `prefix` is the served prefix: the probe asks for a key that does not exist under it.
    pub fn new(storage: Storage, metrics: Arc<Metrics>, prefix: &str) -> Self {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self {
            absent_key: format!("{prefix}.gateway-probe-{nonce:x}"),
            storage,
            metrics,
            reached: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            last_error: std::sync::Mutex::new(None),
        }
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.reached.load(Ordering::Relaxed) && !self.is_draining()
    }

    /// Whether the backend is believed up (`gateway_backend_up`); decides 503 vs 502 for an
    /// unreachable backend.
    pub fn backend_up(&self) -> bool {
        self.metrics.backend_up.get() == 1
    }

    /// Marks the gateway as shutting down.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.metrics.ready.set(0);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The `/readyz` answer: whether ready, and a body naming the backend's state.
    pub fn report(&self) -> (bool, String) {
        let last_error = self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let backend = if self.backend_up() {
            "backend: up".to_string()
        } else {
            format!("backend: down ({})", last_error.as_deref().unwrap_or("unknown"))
        };
        if self.is_draining() {
            (false, format!("shutting down\n{backend}\n"))
        } else if self.is_ready() {
            (true, format!("ready\n{backend}\n"))
        } else {
            let why = last_error.map(|e| format!(" (last probe: {e})")).unwrap_or_default();
            (
                false,
                format!("not ready: the bucket has not been reached yet{why}\n{backend}\n"),
            )
        }
    }

    /// Probes the bucket (HeadBucket through the mTLS client) and records the result.
    ///
    /// A bucket that does not exist yet still counts as reached: the backend answered a signed
    /// request over mTLS, so this pod's endpoint, certificates and keys are right, and the
    /// missing bucket is shared by every pod alike. Kubernetes installs depend on it: the
    /// chart's seed job creates the bucket after `helm install --wait` has waited for ready pods.
    /// Object requests answer 502 naming `NoSuchBucket` in the log until the bucket exists.
    ///
    /// # Errors
    /// Why the backend cannot be used; a probe that takes too long is a timeout.
    pub async fn probe(&self) -> Result<(), StorageError> {
        let bucket = self.storage.bucket();
        // Read before the call: the call itself updates the state through the circuit.
        let was_up = self.backend_up();
        let result = match tokio::time::timeout(PROBE_TIMEOUT, self.check()).await {
            Ok(Err(StorageError::NoSuchBucket { .. })) => {
                tracing::warn!(
                    bucket,
                    "bucket does not exist yet: ready, but objects answer 502 until it is created (gateway seed)"
                );
                Ok(())
            }
            Ok(r) => r,
            Err(_) => {
                let e = StorageError::Timeout(format!("HeadBucket took longer than {PROBE_TIMEOUT:?}"));
                if let Some(circuit) = self.storage.circuit() {
                    circuit.record(crate::backend::circuit::Health::Failed);
                }
                Err(e)
            }
        };
        // gateway_backend_up itself is kept by the circuit, which the probe reports to.
        match &result {
            Ok(()) => {
                if !self.reached.swap(true, Ordering::Relaxed) {
                    tracing::info!(bucket, "bucket reachable: ready");
                } else if !was_up {
                    tracing::info!(bucket, "backend answers again");
                }
            }
            Err(e) => {
                let reached = self.reached.load(Ordering::Relaxed);
                if was_up || !reached {
                    let what = if reached {
                        "backend down: serving what the cache holds; /readyz stays 200"
                    } else {
                        "bucket not reachable: not ready"
                    };
                    tracing::warn!(bucket, error = %e, "{what}");
                }
            }
        }
        // The class, and for a refusal or a 5xx its code (e.g. `denied: AssumeRoleWithCertificate`,
        // `backend_error: AssumeRoleWithCertificate InternalError`).
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = result.as_ref().err().map(|e| match e {
            StorageError::Denied { code, .. } if !code.is_empty() => format!("denied: {code}"),
            StorageError::Backend { code, .. } if !code.is_empty() => format!("backend_error: {code}"),
            e => e.kind().to_string(),
        });
        self.metrics.ready.set(i64::from(self.is_ready()));
        result
    }

    /// HeadBucket, or when the policy refuses it, a GetObject of a key that does not exist;
    /// either way the missing-key policy learns what the backend answers for missing keys.
    async fn check(&self) -> Result<(), StorageError> {
        match self.storage.head_bucket().await {
            Ok(()) => {
                self.storage.missing().learn(false);
                Ok(())
            }
            Err(StorageError::Denied { .. }) => {
                if let Some(denied) = self.storage.probe_missing(&self.absent_key).await? {
                    self.storage.missing().learn(denied);
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Probes every `interval` until the task is dropped; the first probe runs at once. Probes
    /// start on a fixed schedule (not `interval` after the last one ended, which added the
    /// probe's own time), so a backend that fails with no request coming is seen down within
    /// one interval.
    pub async fn run(self: Arc<Self>, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let _ = self.probe().await;
        }
    }
}
