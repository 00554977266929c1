//! `gateway seed`: put the bundled GIF (or `--file`) into the bucket, exactly once.
//!
//! The Helm chart runs this as a hook job that may start before MinIO is ready, so the seed
//! waits: connection errors, timeouts and 5xx are retried with capped exponential backoff until
//! `--wait` runs out. Errors that waiting cannot fix (credentials refused, certificate refused)
//! end it at once. The upload is one atomic PUT, so the bucket holds the old object or the
//! complete new one, never a part. Running it again finds the same bytes and changes nothing.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::backend::storage::{PutOptions, Storage};
use crate::error::StorageError;

/// File name of the GIF compiled into the binary (from `seed/`).
pub const BUNDLED_NAME: &str = "gateway.gif";

/// The GIF compiled into the binary.
pub static BUNDLED: &[u8] = include_bytes!("../../seed/gateway.gif");

/// User metadata holding the SHA-256 of the seeded bytes (`x-amz-meta-sha256`): lets a later run
/// recognise the same content even where the ETag is not an MD5 (multipart, SSE).
const SHA256_META: &str = "sha256";

/// First and largest pause between attempts while the backend is not ready.
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What one seed run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The object did not exist and was written.
    Created,
    /// The object held other bytes and was replaced.
    Replaced,
    /// The object already held these bytes; nothing was written.
    AlreadyPresent,
    /// The object held other bytes and `--no-overwrite` kept them.
    KeptExisting,
}

impl Outcome {
    /// Whether the bucket changed (gateways may hold the old object, or remember a 404).
    pub fn changed(self) -> bool {
        matches!(self, Outcome::Created | Outcome::Replaced)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Replaced => "replaced (the object held other bytes)",
            Outcome::AlreadyPresent => "already present with the same bytes; nothing to do",
            Outcome::KeptExisting => "holds other bytes; left unchanged (--no-overwrite)",
        })
    }
}

/// What to seed.
#[derive(Clone, Debug)]
pub struct SeedPlan {
    /// Object key.
    pub key: String,
    /// The bytes.
    pub data: Bytes,
    /// `Content-Type` to store.
    pub content_type: String,
    /// Replace an object holding other bytes.
    pub overwrite: bool,
    /// How long to wait for the backend.
    pub wait: Duration,
}

impl SeedPlan {
    /// A plan for `data` named `name`, with the content type guessed from the name.
    pub fn new(key: String, data: Bytes, overwrite: bool, wait: Duration) -> Self {
        let content_type = mime_guess::from_path(&key).first_or_octet_stream().to_string();
        Self {
            key,
            data,
            content_type,
            overwrite,
            wait,
        }
    }
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A step failed with an error that retrying cannot fix.
    #[error("{step}: {cause}")]
    Failed {
        /// The S3 operation.
        step: &'static str,
        /// The backend's answer.
        cause: StorageError,
    },
    /// The backend stayed unavailable for the whole `--wait`.
    #[error("{step}: gave up after {waited:.1?} (--wait): {cause}")]
    GaveUp {
        /// The S3 operation.
        step: &'static str,
        /// How long it waited.
        waited: Duration,
        /// The last error.
        cause: StorageError,
    },
}

/// Seeds `plan` into the bucket of `storage` (which should not retry on its own).
///
/// # Errors
/// A [`SeedError`] naming the step and the cause; the bucket is left as it was or complete.
pub async fn seed(storage: &Storage, plan: &SeedPlan) -> Result<Outcome, SeedError> {
    let deadline = Instant::now() + plan.wait;
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&plan.data));
    let md5_etag = format!("\"{}\"", hex::encode(<md5::Md5 as md5::Digest>::digest(&plan.data)));

    let metadata = [(SHA256_META, sha256.clone())];
    let replace = PutOptions {
        content_type: &plan.content_type,
        cache_control: None,
        metadata: &metadata,
        only_if_absent: false,
        ..Default::default()
    };
    let create = PutOptions {
        only_if_absent: true,
        ..replace.clone()
    };
    // Three rounds at most: the bucket may have to be created, and a conditional create that
    // loses a race re-checks what won.
    for _ in 0..3 {
        match retrying(deadline, "GetObject", || storage.stat(&plan.key)).await {
            Ok(existing) => {
                let same = existing.metadata.iter().any(|(k, v)| k == SHA256_META && *v == sha256)
                    || existing.etag.as_deref() == Some(md5_etag.as_str());
                if same {
                    return Ok(Outcome::AlreadyPresent);
                }
                if !plan.overwrite {
                    return Ok(Outcome::KeptExisting);
                }
                retrying(deadline, "PutObject", || {
                    storage.put(&plan.key, plan.data.clone(), &replace)
                })
                .await?;
                return Ok(Outcome::Replaced);
            }
            Err(SeedError::Failed {
                cause: StorageError::NotFound,
                ..
            }) => {
                match retrying(deadline, "PutObject", || {
                    storage.put(&plan.key, plan.data.clone(), &create)
                })
                .await
                {
                    Ok(()) => return Ok(Outcome::Created),
                    Err(SeedError::Failed {
                        cause: StorageError::PreconditionFailed,
                        ..
                    }) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(SeedError::Failed {
                cause: StorageError::NoSuchBucket { .. },
                ..
            }) => {
                if retrying(deadline, "CreateBucket", || storage.create_bucket()).await? {
                    tracing::info!(bucket = storage.bucket(), "bucket created");
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(SeedError::Failed {
        step: "PutObject",
        cause: StorageError::PreconditionFailed,
    })
}

/// Runs `op` until it succeeds, fails permanently, or `deadline` passes.
pub(crate) async fn retrying<T, F, Fut>(deadline: Instant, step: &'static str, mut op: F) -> Result<T, SeedError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StorageError>>,
{
    let started = Instant::now();
    let mut pause = BACKOFF_START;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if !e.is_transient() => return Err(SeedError::Failed { step, cause: e }),
            Err(e) => {
                let now = Instant::now();
                if now + pause > deadline {
                    return Err(SeedError::GaveUp {
                        step,
                        waited: started.elapsed(),
                        cause: e,
                    });
                }
                tracing::info!(step, error = %e, retry_in = ?pause, "backend not ready; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Builds the plan from `gateway seed` flags: the bundled GIF unless `--file` is given.
///
/// # Errors
/// A [`crate::error::ConfigError`] when `--file` cannot be read or `--key` cannot be a key.
pub fn plan_from_args(args: &crate::cli::SeedArgs) -> Result<SeedPlan, crate::error::ConfigError> {
    use crate::error::ConfigError;
    let (default_key, data) = match &args.file {
        Some(path) => {
            let data = std::fs::read(path)
                .map_err(|e| ConfigError::new("--file", format!("cannot read {}: {e}", path.display())))?;
            let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                ConfigError::new(
                    "--file",
                    format!("{} has no usable file name; pass --key", path.display()),
                )
            })?;
            (name.to_string(), Bytes::from(data))
        }
        None => (BUNDLED_NAME.to_string(), Bytes::from_static(BUNDLED)),
    };
    let key = args.key.clone().unwrap_or(default_key);
    if key.is_empty() || key.len() > crate::http::key::MAX_KEY_BYTES || key.starts_with('/') {
        return Err(ConfigError::new(
            "--key",
            format!("{key:?} is not an object key (1-1024 bytes, no leading '/')"),
        ));
    }
    Ok(SeedPlan::new(key, data, !args.no_overwrite, args.wait))
}

/// Seeds and prints one line saying what happened (what the Helm job's log shows).
///
/// # Errors
/// As [`seed`].
pub async fn run(backend: &crate::backend::settings::BackendConfig, plan: &SeedPlan) -> Result<Outcome, SeedError> {
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
    let storage = Storage::new(backend, metrics, crate::backend::storage::Retries::CallerManaged);
    if !backend.https {
        tracing::warn!(endpoint = %backend.endpoint, "backend endpoint is plain http: the object and signatures travel unencrypted");
    }
    tracing::info!(endpoint = %backend.endpoint, bucket = %backend.bucket, key = %plan.key, tls = %backend.tls_summary, "seeding");
    let outcome = seed(&storage, plan).await?;
    println!(
        "seed: s3://{}/{}: {} ({} bytes, {})",
        backend.bucket,
        plan.key,
        outcome,
        plan.data.len(),
        plan.content_type
    );
    Ok(outcome)
}
