//! `gateway policies`: create MinIO canned policies from `NAME.json` files, through MinIO's
//! admin API (`add-canned-policy`), signed with the credentials given.
//!
//! The chart's setup Job runs it with MinIO's root credentials, so that the gateway and the seed
//! job get identities of their own (least privilege) and the root credentials never leave
//! MinIO's pod and that Job. A certificate whose common name is `NAME` then gets the policy
//! `NAME` from `AssumeRoleWithCertificate`. Like `seed`, it waits for a MinIO that is starting;
//! adding a policy that exists replaces it, so running it again changes nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::backend::storage::Storage;
use crate::cmd::seed::{SeedError, retrying};
use crate::error::ConfigError;

/// The largest policy document MinIO takes (`maxBucketPolicySize`, cmd/bucket-policy-handlers.go;
/// `AddCannedPolicy` answers `EntityTooLarge` beyond it).
const MAX_POLICY_BYTES: usize = 20 << 10;

/// The only policy language version MinIO takes: `AddCannedPolicy` (cmd/admin-handlers-users.go)
/// refuses a document without `Version` (`MalformedPolicy`), and minio/pkg's policy parser any
/// other version.
const POLICY_VERSION: &str = "2012-10-17";

/// The policies to create: (name, JSON document), in name order.
#[derive(Clone, Debug)]
pub struct PolicySet(pub Vec<(String, Bytes)>);

impl PolicySet {
    /// Every `NAME.json` file in `dir` (a mounted ConfigMap: its hidden entries are skipped).
    ///
    /// # Errors
    /// A [`ConfigError`] naming `--from` when the directory cannot be read, holds no policy, a
    /// file is not a JSON policy with a `Statement` and `"Version": "2012-10-17"` of at most
    /// 20 KiB, or a name is not one MinIO accepts.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let err = |m: String| ConfigError::new("--from", m);
        let entries = std::fs::read_dir(dir).map_err(|e| err(format!("cannot read {}: {e}", dir.display())))?;
        let mut policies = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| err(format!("cannot read {}: {e}", dir.display())))?;
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json")) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(err(format!(
                    "{name:?} is not a policy name (letters, digits, '-', '_', '.')"
                )));
            }
            let path = entry.path();
            let document = std::fs::read(&path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
            if document.len() > MAX_POLICY_BYTES {
                return Err(err(format!(
                    "{} is {} bytes; MinIO takes a policy of at most 20 KiB ({MAX_POLICY_BYTES} bytes)",
                    path.display(),
                    document.len()
                )));
            }
            let parsed: serde_json::Value =
                serde_json::from_slice(&document).map_err(|e| err(format!("{} is not JSON: {e}", path.display())))?;
            if parsed.get("Statement").is_none() {
                return Err(err(format!("{} is not a policy: it has no Statement", path.display())));
            }
            match parsed.get("Version").and_then(|v| v.as_str()) {
                Some(POLICY_VERSION) => {}
                other => {
                    return Err(err(format!(
                        "{} has {}; MinIO takes only \"Version\": \"{POLICY_VERSION}\"",
                        path.display(),
                        other.map_or_else(|| "no Version".to_string(), |v| format!("Version {v:?}"))
                    )));
                }
            }
            policies.push((name.to_string(), Bytes::from(document)));
        }
        if policies.is_empty() {
            return Err(err(format!("{} holds no NAME.json policy", dir.display())));
        }
        policies.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self(policies))
    }
}

/// Adds every policy of `set`, waiting up to `wait` for a backend that is starting, and prints
/// one line per policy (what the Job's log shows).
///
/// # Errors
/// A [`SeedError`] naming the policy's step: refused (no admin rights, a document MinIO rejects)
/// at once, or the backend unavailable for the whole `wait`.
pub async fn run(
    backend: &crate::backend::settings::BackendConfig,
    set: &PolicySet,
    wait: Duration,
) -> Result<(), SeedError> {
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
    let storage = Storage::new(backend, metrics, crate::backend::storage::Retries::CallerManaged);
    let deadline = Instant::now() + wait;
    tracing::info!(endpoint = %backend.endpoint, tls = %backend.tls_summary, policies = set.0.len(), "adding MinIO policies");
    for (name, document) in &set.0 {
        retrying(deadline, "add-canned-policy", || {
            storage.add_canned_policy(name, document.clone())
        })
        .await?;
        println!("policies: {name}: added");
    }
    Ok(())
}
