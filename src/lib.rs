//! A static-file gateway in front of one S3/MinIO bucket.
//!
//! Browsers fetch objects through it; it reaches the bucket over mutual TLS with SigV4
//! credentials, streams bodies without buffering them, answers backend trouble with honest
//! 5xx statuses, and exports Prometheus metrics. `seed` puts the bundled GIF into the bucket,
//! `certs` makes a development PKI, and `demo` runs everything on one machine.
//!
//! # Layout
//! - [`cli`]: the flags, each also read from `GATEWAY_<FLAG>`.
//! - [`config`]: flags validated into a configuration before anything binds.
//! - [`error`]: typed errors; backend failures map to HTTP statuses.
//! - [`tls`]: rustls client configuration (private CA, client certificate).
//! - [`s3http`]: the HTTP client aws-sdk-s3 uses, presenting the client certificate.
//! - [`storage`]: S3 calls, timed, counted and classified.
//! - [`server`]: accept loop with graceful shutdown; [`router`] → [`admin`] | [`handler`].
//! - [`key`]: request path to object key; [`semantics`]: RFC 9110 preconditions, ranges,
//!   content type; [`cors`]: cross-origin policy; [`listing`]: directory listings.
//! - [`app`]: state shared by requests; readiness. [`cache`]: the in-memory object cache.
//! - [`metrics`]: every Prometheus metric.
//! - [`seed`], [`certs`], [`demo`]: the other subcommands; [`embedded`]: the in-process S3 backend.
//! - [`telemetry`], [`shutdown`]: logs and signals.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod app;
pub mod cache;
pub mod certs;
pub mod cli;
pub mod config;
pub mod cors;
pub mod demo;
pub mod embedded;
pub mod error;
pub mod handler;
pub mod key;
pub mod listing;
pub mod metrics;
pub mod router;
pub mod s3http;
pub mod seed;
pub mod semantics;
pub mod server;
pub mod shutdown;
pub mod storage;
pub mod telemetry;
pub mod tls;
