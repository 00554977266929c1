//! Answers to object requests: `GET`/`HEAD` of an object ([`object`]), the not-found policy
//! ([`fallback`]), directory listings ([`listing`]), the headers of every object response
//! ([`response`]) and the site's header and redirect rules ([`rules`]).
//!
//! Imports `config` and the layers below it, nothing above.

pub mod fallback;
pub mod listing;
pub mod object;
pub mod response;
pub mod rules;
