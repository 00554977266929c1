//! The commands besides `serve`: `seed`, `purge` (which `seed` uses to tell running gateways to
//! drop what it replaced), `policies`, `certs` and, with the `demo` feature, `demo`.
//!
//! The top layer: nothing imports it but `main`.

pub mod certs;
#[cfg(feature = "demo")]
pub mod demo;
pub mod policies;
pub mod purge;
pub mod seed;
