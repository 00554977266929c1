//! The HTTP rules of RFC 9110 that an object response follows, as pure functions of headers
//! and object metadata: which key a path names, preconditions, ranges, content type, content
//! coding negotiation, CORS, and the site rules (headers and redirects by path, `_headers` and
//! `_redirects`), and Basic authentication for protected paths.
//!
//! Nothing here does I/O or knows about the backend or the cache (a bcrypt check runs on the
//! blocking pool, nothing more); every rule is unit-tested beside its code. Imports only the
//! crate's foundation files (`body`, `error`, `meta`).

pub mod basic_auth;
pub mod compression;
pub mod conditional;
pub mod content_type;
pub mod cors;
pub mod key;
pub mod range;
pub mod rules;
