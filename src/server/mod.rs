//! The running server: accept loops and connections, routing and per-request accounting, the
//! admin endpoints, and the background tasks that live as long as the server.
//!
//! Imports `handler` and the layers below it.

pub mod accounting;
pub mod admin;
pub mod conn;
pub mod router;
pub mod serve;
pub mod tasks;
