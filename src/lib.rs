//! A static-file gateway in front of S3/MinIO buckets.
//!
//! Browsers fetch objects through it; it reaches the bucket over mutual TLS with SigV4
//! credentials, streams bodies without buffering them, answers backend trouble with honest
//! 5xx statuses, and exports Prometheus metrics. `seed` puts the bundled GIF into the bucket,
//! `certs` makes a development PKI, and `demo` runs everything on one machine.
//!
//! # Layout
//! Each folder is a layer; a folder imports only the files at the root and the folders below
//! it, never one above (there is no cycle between modules either). From the bottom:
//!
//! 0. The foundation, files at the root: `error` (typed errors), `metrics` (every metric),
//!    `cli` (the raw flags and their defaults), `meta` (what is known of an object besides its
//!    bytes), `body` (the response body type), `shutdown` and `telemetry` (signals, logs).
//! 1. `http/`: the RFC 9110 rules an object response follows (key, preconditions, ranges,
//!    content type, content codings, CORS), a site's header and redirect rules (`_headers`,
//!    `_redirects`) and Basic authentication; no I/O but running a bcrypt check off the
//!    async threads.
//! 2. `backend/`: reaching the bucket (settings, TLS, the HTTP client, credentials, the SDK
//!    client, circuit breaker, missing-key policy, S3 calls and their classification, MinIO's
//!    own APIs, readiness).
//! 3. `cache/`: the in-memory object cache (its RFC 9111 policy, RFC 9211 status, streaming
//!    fills, revalidation, compressed variants, purge, zero-copy entries), the disk tier for
//!    objects too large for memory, and the bucket's change events that keep them true.
//! 4. `config/`: `serve`'s flags and sites file validated into a configuration, and the state
//!    shared by requests.
//! 5. `handler/`: answers to object requests (the object, the not-found policy, listings,
//!    response headers, the site's rules and protected paths).
//! 6. `server/`: accept loops, connections, routing and request accounting, the admin
//!    endpoints, the background tasks.
//! 7. `cmd/`: `seed`, `purge`, `policies`, `certs`, `demo`.
//!
//! The embedded S3 backend that `demo` and the tests run is a crate of its own
//! (`crates/embedded-s3`), which imports nothing of this one.
//!
//! # Public surface
//! What `main`, the tests, the benchmark and the examples use, re-exported below; everything
//! else is private to the crate, so that the compiler reports what nothing uses.
//!
//! # Features
//! | feature | default | what it adds |
//! |---|---|---|
//! | `demo` | on | `gateway demo` and the embedded S3 backend; the container image builds without it |

// `unsafe` is denied everywhere but in `cache::zerocopy`, whose one block maps a sealed memory
// file (its safety argument is written there).
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod body;
mod cache;
pub mod cli;
mod cmd;
mod config;
pub mod error;
mod handler;
mod http;
mod meta;
mod metrics;
mod server;
pub mod shutdown;
pub mod telemetry;

pub use backend::settings::BackendConfig;
pub use backend::storage::{PutOptions, Retries, Storage};
pub use backend::tls::not_after;
pub use cmd::certs::DevPki;
#[cfg(feature = "demo")]
pub use cmd::demo;
pub use cmd::{certs, policies, purge, seed};
pub use config::serve::ServeConfig;
pub use http::compression::Encoding;
pub use meta::StoredHeaders;
pub use metrics::{MetricInfo, Metrics};
pub use server::serve::serve;
