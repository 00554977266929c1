//! Logging setup: tracing to stderr, as text or JSON, filtered by `--log-level` or `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber. `level` wins over `RUST_LOG`; the default is `info`.
///
/// # Errors
/// When the filter does not parse (reported against `--log-level`).
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), crate::error::ConfigError> {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l)
            .map_err(|e| crate::error::ConfigError::new("--log-level", format!("{l:?} is not a log filter: {e}")))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, never in files or container logs.
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}
