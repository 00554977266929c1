//! An SDK error turned into what happened, in words an operator can act on: missing key,
//! credentials refused, TLS refused, unreachable, timeout, with no secret in it.

use std::error::Error as StdError;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::backend::transport::{find_tls_error, is_backend_timeout};
use crate::error::{StorageError, error_chain};

/// Turns an SDK error into what happened, in words an operator can act on.
pub fn classify<E>(err: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let context = || error_chain(&err);
    if let Some(failure) = sts_failure(&err) {
        // The STS refused the identity (a credentials problem, not an unreachable backend), or
        // could not answer yet.
        return failure;
    }
    match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("").to_string();
            let message = service.err().message().unwrap_or("").to_string();
            match status {
                404 if code == "NoSuchBucket" => StorageError::NoSuchBucket { code },
                404 => StorageError::NotFound,
                400 if CLIENT_CAUSED.contains(&code.as_str()) => StorageError::BadKey { code, message },
                304 => StorageError::NotModified,
                412 => StorageError::PreconditionFailed,
                401 | 403 => StorageError::Denied {
                    code: if code.is_empty() {
                        format!("{}{status}", crate::error::CODELESS)
                    } else {
                        code
                    },
                    message,
                },
                _ => StorageError::Backend { status, code, message },
            }
        }
        SdkError::DispatchFailure(dispatch) => {
            if let Some(tls) = find_tls_error(&err) {
                StorageError::Tls(tls.to_string())
            } else if dispatch.is_timeout() || is_backend_timeout(&err) {
                StorageError::Timeout(context())
            } else {
                StorageError::Unreachable(hint_closed(context()))
            }
        }
        SdkError::TimeoutError(_) => StorageError::Timeout(context()),
        SdkError::ResponseError(_) => StorageError::BadResponse(context()),
        SdkError::ConstructionFailure(_) => StorageError::Internal(context()),
        _ => StorageError::BadResponse(context()),
    }
}

/// The STS's answer, when that is why a call could not be made (the credentials provider failed
/// with a [`crate::backend::sts::StsError`]): a refusal (4xx) means no credentials at all; a 5xx
/// (MinIO starting) is a backend failure worth retrying.
fn sts_failure<E>(err: &SdkError<E, HttpResponse>) -> Option<StorageError>
where
    E: StdError + Send + Sync + 'static,
{
    use crate::backend::sts::StsError;
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        match e.downcast_ref::<StsError>() {
            Some(refused @ StsError::Refused { .. }) => {
                return Some(StorageError::Denied {
                    code: crate::error::STS_REFUSED.into(),
                    message: refused.to_string(),
                });
            }
            Some(
                failed @ StsError::Unavailable {
                    action, status, code, ..
                },
            ) => {
                return Some(StorageError::Backend {
                    status: *status,
                    code: format!("{action} {code}"),
                    message: failed.to_string(),
                });
            }
            _ => {}
        }
        source = e.source();
    }
    None
}

/// S3 and MinIO error codes of a 400 that the key itself caused (MinIO's names are the
/// `X-Minio…` ones): the gateway's client sent a key the backend cannot store.
const CLIENT_CAUSED: &[&str] = &[
    "KeyTooLongError",
    "InvalidObjectName",
    "XMinioInvalidObjectName",
    "InvalidURI",
];

/// A connection closed before any answer can be a backend restarting, but when it goes on it is
/// usually a TLS terminator in front of the backend (nginx with `ssl_verify_client on`, as in
/// the Helm chart's MinIO pod) refusing the client certificate: it completes the handshake,
/// then closes without a TLS alert, so rustls has no TLS error to report. Say so in the log.
fn hint_closed(message: String) -> String {
    if message.contains("connection closed before message completed") {
        format!(
            "{message} (if this persists: a TLS proxy in front of the backend may be refusing the client \
             certificate; check --client-cert against the CA the backend trusts)"
        )
    } else {
        message
    }
}
