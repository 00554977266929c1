//! The S3 backend: how to reach it and what it answered.
//!
//! Settings validated before anything connects ([`settings`]), the client's TLS trust and
//! identity ([`tls`]), the HTTP client aws-sdk-s3 uses ([`transport`]), where the credentials
//! come from ([`credentials`], with MinIO's STS in [`sts`] and a web identity token in
//! [`web_identity`]), the SDK client built from them ([`client`]), the circuit breaker
//! ([`circuit`]), what a missing key looks like ([`missing`]), every S3 call timed and counted
//! ([`storage`]) and its error classified ([`classify`]), MinIO's own APIs ([`minio`]), and the
//! readiness probe that keeps the backend's state current ([`readiness`]).
//!
//! Imports the foundation and `http`, nothing above.

pub mod circuit;
pub mod classify;
pub mod client;
pub mod credentials;
pub mod metadata;
pub mod minio;
pub mod missing;
pub mod readiness;
pub mod settings;
pub mod storage;
pub mod sts;
pub mod tls;
pub mod transport;
pub mod web_identity;
