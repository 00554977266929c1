//! Command-line interface: the raw flags, exactly as the user typed them.
//!
//! Every flag also reads an environment variable named `GATEWAY_<FLAG>` (dashes become
//! underscores), which is how the Helm chart and Terraform configure the binary. Values are
//! kept raw here; the `config` layer turns them into a validated configuration before anything
//! binds or connects. Secret values never have defaults and their environment values are hidden
//! from `--help`.

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

mod backend;
mod commands;
mod serve;

pub use backend::{BackendArgs, CredentialsMode};
#[cfg(feature = "demo")]
pub use commands::DemoArgs;
pub use commands::{CertsArgs, PoliciesArgs, SeedArgs};
pub use serve::{BucketEvents, DEFAULT_CACHE_CONTROL, MissingObjectStatus, ServeArgs, SiteRules};

/// Static-file gateway in front of one S3/MinIO bucket.
#[derive(Debug, Parser)]
#[command(
    name = "gateway",
    version,
    about,
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "GATEWAY_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `gateway=debug,info`; when unset, `RUST_LOG` is used, else `info`.
    #[arg(long, global = true, env = "GATEWAY_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the objects of a bucket over HTTP.
    Serve(Box<ServeArgs>),
    /// Upload the bundled GIF (or --file) to the bucket, idempotently.
    Seed(Box<SeedArgs>),
    /// Create MinIO policies from the NAME.json files of a directory (MinIO's admin API).
    Policies(Box<PoliciesArgs>),
    /// Generate a development CA, a server certificate for the S3 backend and a client certificate.
    Certs(CertsArgs),
    /// Run everything on this machine: an embedded mTLS S3 backend, the seed, and the gateway.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Parses `30s`, `5m`, `1h 30m`, `250ms`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (expected e.g. 30s, 5m, 250ms)"))
}

/// Parses `argv` (flags only, no command name) into `T` through the same definitions, defaults
/// and validation as the command line, but without reading any `GATEWAY_*` variable: for
/// configurations the binary assembles itself (`gateway demo`), which must not change with the
/// environment it runs in.
///
/// # Errors
/// A flag `T` does not accept.
pub fn parse_flags<T: clap::Args + clap::FromArgMatches>(argv: &[String]) -> Result<T, clap::Error> {
    let command = T::augment_args(clap::Command::new("gateway").no_binary_name(true))
        .mut_args(|arg| arg.env(clap::builder::Resettable::Reset));
    T::from_arg_matches(&command.try_get_matches_from(argv)?)
}

/// Renders a clap error as the single line the user needs: what is wrong, which flag, and
/// clap's hints (the valid values, a "did you mean" suggestion).
///
/// clap's own rendering spans several lines (usage, tips); operators reading a pod's
/// `CrashLoopBackOff` log want one line that names the flag and the fix.
pub fn one_line_error(err: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() == ErrorKind::MissingRequiredArgument
        && let Some(ContextValue::Strings(args)) = err.get(ContextKind::InvalidArg)
    {
        // Worded as a [`crate::error::ConfigError`] for a flag checked later is:
        // `--bucket: is required (or GATEWAY_BUCKET)`.
        let missing: Vec<String> = args.iter().map(|a| required(a)).collect();
        return format!("error: {}", missing.join("; "));
    }
    let rendered = err.render().to_string();
    let mut line = rendered
        .lines()
        .next()
        .unwrap_or("error: invalid arguments")
        .trim()
        .to_string();
    let strings = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    };
    let valid = strings(ContextKind::ValidValue);
    if !valid.is_empty() {
        line.push_str(&format!("; possible values: {}", valid.join(", ")));
    }
    let suggested: Vec<String> = [
        ContextKind::SuggestedArg,
        ContextKind::SuggestedValue,
        ContextKind::SuggestedSubcommand,
    ]
    .into_iter()
    .flat_map(strings)
    .collect();
    if !suggested.is_empty() {
        line.push_str(&format!("; did you mean '{}'?", suggested.join("' or '")));
    }
    format!("{line} (see --help)")
}

/// `--from <DIR>` becomes `--from: is required (or GATEWAY_FROM)`.
fn required(arg: &str) -> String {
    let flag = arg.split_whitespace().next().unwrap_or(arg);
    match flag.strip_prefix("--") {
        Some(name) => format!("{flag}: is required (or {})", env_name(name)),
        None => format!("{flag}: is required"),
    }
}

/// The environment variable that backs a long flag name.
pub fn env_name(flag: &str) -> String {
    format!(
        "GATEWAY_{}",
        flag.trim_start_matches('-').replace('-', "_").to_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_duration_names_the_flag_on_one_line() {
        let err = Cli::try_parse_from(["gateway", "seed", "--wait", "soon"]).unwrap_err();
        let line = one_line_error(&err);
        assert!(line.contains("--wait"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn one_line_errors_keep_valid_values_and_suggestions() {
        let err = Cli::try_parse_from(["gateway", "--log-format", "yaml", "certs", "--out", "x"]).unwrap_err();
        let line = one_line_error(&err);
        assert!(line.contains("possible values: text, json"), "{line}");
        let err = Cli::try_parse_from(["gateway", "seed", "--buckt", "gifs"]).unwrap_err();
        let line = one_line_error(&err);
        assert!(line.contains("did you mean '--bucket'?"), "{line}");
        let err = Cli::try_parse_from(["gateway", "serv"]).unwrap_err();
        let line = one_line_error(&err);
        assert!(line.contains("did you mean 'serve'?"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn env_names_follow_the_flag() {
        assert_eq!(env_name("--client-cert"), "GATEWAY_CLIENT_CERT");
        assert_eq!(required("--out <DIR>"), "--out: is required (or GATEWAY_OUT)");
    }
}
