//! Answers to object requests: `GET`/`HEAD` of an object ([`object`]), the not-found policy
//! ([`fallback`]), directory listings ([`listing`]) and the headers of every object response
//! ([`response`]).
//!
//! Imports `config` and the layers below it, nothing above.

pub mod fallback;
pub mod listing;
pub mod object;
pub mod response;
