//! `serve`'s flags and sites file, validated once into a configuration before anything binds
//! ([`serve`], [`sites`]), and the state shared by every request built from it ([`app`]).
//!
//! Imports the layers below (`http`, `backend`, `cache`), nothing above.

pub mod app;
pub mod serve;
pub mod sites;
