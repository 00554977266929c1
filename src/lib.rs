//! A static-file gateway in front of one S3/MinIO bucket.
//!
//! Browsers fetch objects through it; it reaches the bucket over mutual TLS with SigV4
//! credentials, streams bodies without buffering them, answers backend trouble with honest
//! 5xx statuses, and exports Prometheus metrics. `seed` puts the bundled GIF into the bucket,
//! `certs` makes a development PKI, and `demo` runs everything on one machine.
//!
//! # Layout
//! Imports run one way, from the commands at the top down to the leaves; no module imports one
//! above it.
//!
//! 1. Leaves, importing nothing of the crate but each other's types:
//!    `body` (the response body type), [`error`] (typed errors), [`metrics`] (every metric),
//!    [`cli`] (the raw flags and their defaults), [`key`] (request path to object key), the
//!    RFC 9110 rules `conditional`, `range` and `content_type`, `conn` (a client
//!    connection's activity, for idle timeouts), [`zerocopy`] (cache entries in sealed memory
//!    files, sent with sendfile), and [`shutdown`], [`telemetry`] (signals, logs).
//! 2. The backend: [`tls`] (rustls trust and identity, reloaded), `s3http` (the HTTP client
//!    aws-sdk-s3 uses, presenting the client certificate), [`credentials`] (static keys, or
//!    temporary ones MinIO issues for the client certificate), [`backend`] (its validated settings),
//!    [`circuit`] (the breaker that stops calls to a failing backend), [`missing`] (what a
//!    missing key looks like: 404, or 403 without s3:ListBucket) and [`storage`] (S3 calls,
//!    timed, counted, classified and passed through the breaker).
//! 3. On the backend: [`events`] (the bucket's change events, dropping changed objects from
//!    the cache), [`compression`] (content codings: what compresses, what a request
//!    accepts), [`fill`] (an object streaming to its readers while it fills the cache),
//!    [`cache`] (the in-memory object cache, compressed representations included), `readiness` (the background
//!    probe, `gateway_backend_up`, draining), `listing` (directory listings from storage), `cors` (cross-origin policy),
//!    `response` (object response headers).
//! 4. Assembly: [`sites`] (each site's presentation and bucket, the sites file, selection by
//!    host), [`config`] (flags validated into a configuration before anything binds) and
//!    [`app`] (the state shared by requests).
//! 5. Requests: `fallback` (the not-found policy), `object` (GET/HEAD of an object),
//!    `admin` (health, readiness, metrics), `router` (method and path to handler, request
//!    bookkeeping), [`server`] (accept loops, graceful shutdown).
//! 6. Commands: [`seed`] (with [`purge`], which tells running gateways to drop what it
//!    replaced), [`policies`] (MinIO canned policies through its admin API), [`certs`] and,
//!    with the `demo` feature, [`demo`] with its in-process S3 backend [`embedded`], its
//!    switches for misbehaving [`embedded_faults`], and its MinIO extensions
//!    [`embedded_events`] (ListenBucketNotification), [`embedded_sts`]
//!    (AssumeRoleWithCertificate and AssumeRoleWithWebIdentity), [`embedded_admin`] (the admin
//!    API's add-canned-policy, and each request's check against its key's policy) and
//!    [`embedded_policy`] (IAM policy documents).
//!
//! # Features
//! | feature | default | what it adds |
//! |---|---|---|
//! | `demo` | on | `gateway demo` and the embedded S3 backend (s3s, s3s-fs); the container image builds without it |

// `unsafe` is denied everywhere but in `zerocopy`, whose one block maps a sealed memory file
// (its safety argument is written there).
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub(crate) mod admin;
pub mod app;
pub mod backend;
pub(crate) mod body;
pub mod cache;
pub mod certs;
pub mod circuit;
pub mod cli;
pub mod compression;
pub(crate) mod conditional;
pub mod config;
pub(crate) mod conn;
pub(crate) mod content_type;
pub(crate) mod cors;
pub mod credentials;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "demo")]
pub mod embedded;
#[cfg(feature = "demo")]
pub mod embedded_admin;
#[cfg(feature = "demo")]
pub mod embedded_events;
#[cfg(feature = "demo")]
pub mod embedded_faults;
#[cfg(feature = "demo")]
pub mod embedded_policy;
#[cfg(feature = "demo")]
pub mod embedded_sts;
pub mod error;
pub mod events;
pub(crate) mod fallback;
pub mod fill;
pub mod key;
pub(crate) mod listing;
pub mod metrics;
pub mod missing;
pub(crate) mod object;
pub mod policies;
pub mod purge;
pub(crate) mod range;
pub(crate) mod readiness;
pub(crate) mod response;
pub(crate) mod router;
pub(crate) mod s3http;
pub mod seed;
pub mod server;
pub mod shutdown;
pub mod sites;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod zerocopy;
