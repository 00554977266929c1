//! Typed errors, each carrying what the operator needs to fix it.
//!
//! [`ConfigError`] names the flag at fault and ends the process with exit code 2 before anything
//! binds. [`StorageError`] classifies what the S3 backend did, so the HTTP layer answers with an
//! honest status (404 only when the object is really missing; 502/503/504 for backend trouble)
//! and the log says why. No variant ever holds a credential.

use http::StatusCode;

/// A flag or environment value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    /// The flag at fault, e.g. `--ca-cert` (its environment variable is `GATEWAY_CA_CERT`).
    pub flag: &'static str,
    /// What is wrong and, where there is one, the fix.
    pub message: String,
}

impl ConfigError {
    /// A config error for `flag`.
    pub fn new(flag: &'static str, message: impl Into<String>) -> Self {
        Self {
            flag,
            message: message.into(),
        }
    }
}

/// Why a call to the S3 backend failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StorageError {
    /// The key does not exist (S3 404 `NoSuchKey`/`NotFound`).
    #[error("no such key")]
    NotFound,
    /// The bucket does not exist (S3 404 `NoSuchBucket`): a deployment error, not a missing file.
    #[error("bucket does not exist ({code})")]
    NoSuchBucket {
        /// The S3 error code.
        code: String,
    },
    /// The backend refused our credentials or signature (403/401).
    #[error("backend denied the request: {code}: {message} (check the access key, secret key and region)")]
    Denied {
        /// The S3 error code, e.g. `SignatureDoesNotMatch`.
        code: String,
        /// The backend's message.
        message: String,
    },
    /// The TLS handshake with the backend failed: certificate rejected or not trusted.
    #[error("backend TLS handshake refused: {0} (check --ca-cert, --client-cert and --client-key)")]
    Tls(String),
    /// The backend could not be reached (connection refused, DNS, reset).
    #[error("backend unreachable: {0}")]
    Unreachable(String),
    /// The backend did not answer in time.
    #[error("backend timed out: {0}")]
    Timeout(String),
    /// The backend answered with a server error.
    #[error("backend error {status}: {code}: {message}")]
    Backend {
        /// HTTP status from the backend.
        status: u16,
        /// The S3 error code.
        code: String,
        /// The backend's message.
        message: String,
    },
    /// The backend refused the request because of what the client asked for (a key S3 cannot
    /// store: too long, an invalid name): the client's mistake, answered 400.
    #[error("backend refused the key: {code}: {message}")]
    BadKey {
        /// The S3 error code, e.g. `KeyTooLongError`.
        code: String,
        /// The backend's message.
        message: String,
    },
    /// The backend answered something that is not a valid S3 response.
    #[error("invalid backend response: {0}")]
    BadResponse(String),
    /// A conditional GET found the object unchanged (304).
    #[error("not modified")]
    NotModified,
    /// A precondition failed (412), e.g. a conditional PUT found an existing object.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The request could not be built (a bug or an invalid key).
    #[error("request could not be built: {0}")]
    Internal(String),
    /// Not sent: the backend has been failing and the circuit breaker is open.
    #[error("backend failing; not asked again for {retry_after:.0?} (circuit open)")]
    CircuitOpen {
        /// When the next call may go through.
        retry_after: std::time::Duration,
    },
    /// Not sent: as many backend calls as allowed are in flight already
    /// (`--backend-max-concurrency`, or a few while the backend is failing).
    #[error("backend busy: {in_flight} calls in flight already; not sent")]
    Saturated {
        /// The limit that was reached.
        in_flight: usize,
    },
}

/// The code of a [`StorageError::Denied`] that is the STS refusing the client certificate.
pub const STS_REFUSED: &str = "AssumeRoleWithCertificate";

/// How the code of a 401/403 that carried none begins (`HTTP 403`): a HEAD's answer has no
/// body, so a policy's refusal and a bad signature look alike there.
pub const CODELESS: &str = "HTTP ";

impl StorageError {
    /// The status a client of the gateway gets for this failure.
    ///
    /// `backend_up` is whether the backend is believed up (`gateway_backend_up`): an unreachable
    /// backend is 503 while it is known to be down (retry later; a failed call marks it down
    /// before its status is chosen), 502 otherwise.
    pub fn status(&self, backend_up: bool) -> StatusCode {
        match self {
            StorageError::NotFound => StatusCode::NOT_FOUND,
            StorageError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            StorageError::Unreachable(_) if !backend_up => StatusCode::SERVICE_UNAVAILABLE,
            StorageError::CircuitOpen { .. } | StorageError::Saturated { .. } => StatusCode::SERVICE_UNAVAILABLE,
            StorageError::Backend { status: 503, .. } => StatusCode::SERVICE_UNAVAILABLE,
            StorageError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            StorageError::NotModified => StatusCode::NOT_MODIFIED,
            StorageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            StorageError::BadKey { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// Whether waiting and retrying can fix this (the backend is starting or overloaded),
    /// as opposed to a configuration error that retrying only hides.
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Unreachable(_)
            | StorageError::Timeout(_)
            | StorageError::BadResponse(_)
            | StorageError::CircuitOpen { .. }
            | StorageError::Saturated { .. } => true,
            StorageError::Backend { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Whether this is the STS refusing the client certificate (no credentials at all), not
    /// the backend refusing one call.
    pub fn is_sts_refusal(&self) -> bool {
        matches!(self, StorageError::Denied { code, .. } if code == STS_REFUSED)
    }

    /// A short, stable label for metrics and logs (bounded cardinality).
    pub fn kind(&self) -> &'static str {
        match self {
            StorageError::NotFound => "not_found",
            StorageError::NoSuchBucket { .. } => "no_such_bucket",
            StorageError::Denied { .. } => "denied",
            StorageError::Tls(_) => "tls",
            StorageError::Unreachable(_) => "unreachable",
            StorageError::Timeout(_) => "timeout",
            StorageError::Backend { .. } => "backend_error",
            StorageError::BadKey { .. } => "bad_key",
            StorageError::BadResponse(_) => "bad_response",
            StorageError::PreconditionFailed => "precondition_failed",
            StorageError::NotModified => "not_modified",
            StorageError::Internal(_) => "internal",
            StorageError::CircuitOpen { .. } => "circuit_open",
            StorageError::Saturated { .. } => "saturated",
        }
    }
}

/// Every message in an error's chain, joined with `: `, without repeats: one readable line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let msg = e.to_string();
        if !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_failures_are_never_404() {
        let cases = [
            StorageError::Denied {
                code: "SignatureDoesNotMatch".into(),
                message: String::new(),
            },
            StorageError::Tls("x".into()),
            StorageError::Unreachable("x".into()),
            StorageError::Timeout("x".into()),
            StorageError::NoSuchBucket {
                code: "NoSuchBucket".into(),
            },
            StorageError::BadResponse("x".into()),
        ];
        for e in cases {
            assert_ne!(e.status(true), StatusCode::NOT_FOUND, "{e}");
            assert!(e.status(true).is_server_error(), "{e}");
        }
        assert_eq!(StorageError::NotFound.status(true), StatusCode::NOT_FOUND);
        let bad_key = StorageError::BadKey {
            code: "KeyTooLongError".into(),
            message: String::new(),
        };
        assert_eq!(bad_key.status(true), StatusCode::BAD_REQUEST);
        assert_eq!(
            StorageError::Timeout("t".into()).status(true),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            StorageError::Unreachable("r".into()).status(false),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
